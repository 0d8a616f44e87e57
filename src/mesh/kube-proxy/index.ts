/** podtables' kube-proxy: Kubernetes objects to the rules kube-proxy's iptables mode writes. */
export { generate, toRuleset, LARGE_CLUSTER_ENDPOINTS, type Generated } from './generate';
export { nodeOptions, type NodeOptions } from './context';
export { readObjects, emptyObjects, type KubeObjects } from './objects';
export { renderRestore, renderPartialRestore, renderSave } from './render';
export { renderNft } from './nft';
export { serviceChainNames, endpointChainName } from './hash';
