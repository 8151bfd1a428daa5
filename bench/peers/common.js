'use strict';
// Shared by the peers: arguments and the 80/20 pick.
const [port, v1, v2] = process.argv.slice(2).map(Number);
if (!port || !v1 || !v2) { console.error('usage: node PEER.js PORT V1_PORT V2_PORT'); process.exit(2); }
const pick = () => (Math.random() < 0.8 ? v1 : v2);
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const endToEnd = (h) => { const o = {}; for (const k in h) if (!HOP.has(k)) o[k] = h[k]; return o; };
module.exports = { port, v1, v2, pick, endToEnd, HOP };
