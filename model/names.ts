import { Check } from './errors';

// Kubernetes object names: RFC 1123 label (Services, Namespaces, label-like names)
// and RFC 1123 subdomain (most other objects). Istio subset names must be DNS-1123 labels too.
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// Kubernetes label values: up to 63 chars, alphanumerics with - _ . inside.
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
// A hostname as VirtualService/Gateway hosts take it: DNS names, optionally a leading "*." wildcard, or "*".
const HOST = /^(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$/;

export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

export function checkDns1123Label(check: Check, field: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || !isDns1123Label(value)) {
    check.fail(field, value, 'a DNS-1123 label (lower-case letters, digits and "-", starting and ending alphanumeric, at most 63 characters)');
  }
}

export function checkDns1123Subdomain(check: Check, field: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length > 253 || !DNS1123_SUBDOMAIN.test(value)) {
    check.fail(field, value, 'a DNS-1123 subdomain (lower-case letters, digits, "-" and ".", at most 253 characters)');
  }
}

export function checkLabelValue(check: Check, field: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value)) {
    check.fail(field, value, 'a Kubernetes label value (at most 63 characters: alphanumerics, "-", "_", ".")');
  }
}

export function checkHost(check: Check, field: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length > 253 || !HOST.test(value)) {
    check.fail(field, value, 'a host name ("name", "name.namespace", a FQDN, "*.example.com" or "*")');
  }
}
