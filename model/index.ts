// The traffic model: plain TypeScript data and its validation. No cdk8s, no YAML.
export * from './errors';
export * from './duration';
export * from './names';
export * from './service-ref';
export * from './traffic';
export * from './policy';
export * from './gateway';
export * from './service-entry';
export * from './route-table';
export * from './conventions';
export * from './version';
export * from './capabilities';
