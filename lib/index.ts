// The public API of quantmoe. Everything a user imports comes from here.
export { QuantMoeError, isQuantMoeError } from './errors';
export type { ErrorCode } from './errors';
export { backends, resolveDevice, native } from './native';
export type {
  Backends, CudaDevice, DTypeName, DeviceName, IsaName, MappedFile, MatmulOptions, NativeAddon, Tensor, ThreadOptions,
} from './native';
export { matmul, tensorFromArray, tensorToFloat32 } from './tensor';
