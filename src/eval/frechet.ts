// Fréchet distance between two sets of feature vectors (FID's formula, in any feature space):
//   ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½),
// with Tr((Σ₁Σ₂)^½) computed as Σ √λ over the eigenvalues of Σ₁^½ Σ₂ Σ₁^½ (symmetric, so eigh suffices).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

function eigh(m: Tensor): { values: Tensor; vectors: Tensor } {
  const [values, vectors] = torch.call('aten::linalg_eigh', '', [m]) as Tensor[];
  return { values, vectors };
}

function sqrtPsd(m: Tensor): Tensor {
  const { values, vectors } = eigh(m);
  return vectors.mul(values.clamp(0).sqrt().unsqueeze(0)).matmul(vectors.T);
}

function meanCov(x: Tensor): { mu: Tensor; cov: Tensor } {
  const mu = x.mean(0);
  const c = x.sub(mu);
  return { mu, cov: c.T.matmul(c).div(Math.max(1, x.shape[0] - 1)) };
}

/** Features (N, F) and (M, F); computed in float64. */
export function frechetDistance(a: Tensor, b: Tensor): number {
  if (a.shape[1] !== b.shape[1]) throw new RangeError(`frechetDistance: feature sizes differ (${a.shape[1]} vs ${b.shape[1]})`);
  return torch.noGrad(() => torch.scope(() => {
    const A = meanCov(a.double()), B = meanCov(b.double());
    const s1 = sqrtPsd(A.cov);
    const traceSqrt = eigh(s1.matmul(B.cov).matmul(s1)).values.clamp(0).sqrt().sum();
    const diff = A.mu.sub(B.mu).square().sum();
    const trace = torch.call('aten::trace', '', [A.cov]) as Tensor;
    const trace2 = torch.call('aten::trace', '', [B.cov]) as Tensor;
    return diff.add(trace).add(trace2).sub(traceSqrt.mul(2)).item();
  }));
}
