export * from './exposition';
export * from './format';
export * from './report';
export * from './sources';
