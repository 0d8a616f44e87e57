/** podtables' kube-proxy: Kubernetes objects to the rules kube-proxy's iptables mode writes. */
export { generate, LARGE_CLUSTER_ENDPOINTS, type Generated } from './generate';
export { nodeOptions, type NodeOptions } from './context';
export { readObjects, emptyObjects, type KubeObjects } from './objects';
export { renderRestore, renderPartialRestore } from './render';
export { renderSave } from './fast-save';
export { renderNft } from './nft';
export { serviceChainNames, endpointChainName } from './hash';
