// The Pulumi program under mocks: every synthesized object is registered.
import * as pulumi from '@pulumi/pulumi';

const registered: string[] = [];
pulumi.runtime.setMocks({
  newResource: (args) => { registered.push(`${args.type} ${args.name}`); return { id: `${args.name}-id`, state: args.inputs }; },
  call: (args) => args.inputs,
}, '{{name}}', 'test', true);

test('the program registers the chart\'s Services and VirtualServices', async () => {
  const program = await import('./pulumi');
  const services = await new Promise<string[]>((resolve) => program.services.apply(resolve));
  expect(services).toContain('{{name}}/api');
  await new Promise((r) => setTimeout(r, 500));
  expect(registered.some((r) => r.startsWith('kubernetes:networking.istio.io/v1beta1:VirtualService') || r.startsWith('kubernetes:v1:ConfigMap'))).toBe(true);
});
