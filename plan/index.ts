// Traffic plans: what routes where, per chart, as Markdown with a Mermaid graph.
export * from './model';
export * from './markdown';
export * from './graph';
export * from './svg';
export * from './sources';
export * from './diff';
export * from './base';
export * from './comment';
export * from './github';
export * from './native';
