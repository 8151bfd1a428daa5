/**
 * Objects written the way the API server stores them: quantities in its form ("1", not
 * "1000m"; "1Gi", not "1024Mi") and no zero-valued fields that it omits, so that
 * `kubectl apply` of an unchanged chart reports "unchanged" and Pulumi or GitOps tools
 * see no difference between the YAML and the live object.
 */
import { ApiObject, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';

/** CPU in millicores as the server writes it: whole cores without the "m". */
export function cpuQuantity(millis: number): kplus.Cpu {
  return millis % 1000 === 0 ? kplus.Cpu.units(millis / 1000) : kplus.Cpu.millis(millis);
}

/** MiB as the server writes them: the largest binary suffix that keeps an integer (1024 -> "1Gi"). */
export function memoryQuantity(mib: number): string {
  const suffixes = ['Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
  let n = mib;
  let i = 0;
  while (n % 1024 === 0 && i < suffixes.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n}${suffixes[i]}`;
}

/**
 * cdk8s-plus always writes memory in Mi: rewrite the request and limit of container
 * `index` of a pod template where the server would write them otherwise. Patches run in
 * the order they are added, so call this before anything moves containers.
 */
export function canonicalMemory(workload: ApiObject, index: number, mib: { request: number; limit: number }): void {
  for (const [field, value] of [['requests', mib.request], ['limits', mib.limit]] as const) {
    const canonical = memoryQuantity(value);
    // A Quantity, as the L1 KubeDeployment's own serializer expects at this stage.
    if (canonical !== `${value}Mi`) workload.addJsonPatch(JsonPatch.replace(`/spec/template/spec/containers/${index}/resources/${field}/memory`, k8s.Quantity.fromString(canonical)));
  }
}

/**
 * cdk8s-plus writes `minReadySeconds: 0` and `hostNetwork: false`, which the server
 * omits (zero values): each later `kubectl apply` would then patch them back in and
 * report the Deployment "configured". Drop them when they hold the default.
 */
export function omitServerDefaults(deployment: ApiObject): void {
  deployment.addJsonPatch(JsonPatch.remove('/spec/minReadySeconds'), JsonPatch.remove('/spec/template/spec/hostNetwork'));
}

/**
 * The container security every generated pod gets: non-root as `user`/`group`, no
 * privilege or escalation, every capability dropped, RuntimeDefault seccomp, and a
 * read-only root filesystem unless the workload asks otherwise.
 */
export function restrictedContainer(user: number, group: number, readOnlyRootFilesystem = true): kplus.ContainerSecurityContextProps {
  return {
    ensureNonRoot: true, user, group, privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem,
    capabilities: { drop: [kplus.Capability.ALL] }, seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT },
  };
}

/** CPU (millicores) and memory (MiB) requests and limits in the API server's form (call canonicalMemory after adding the container). */
export function containerResources(cpu: { request: number; limit: number }, mem: { request: number; limit: number }): kplus.ContainerResources {
  return {
    cpu: { request: cpuQuantity(cpu.request), limit: cpuQuantity(cpu.limit) },
    memory: { request: Size.mebibytes(mem.request), limit: Size.mebibytes(mem.limit) },
  };
}
