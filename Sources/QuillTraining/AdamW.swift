import Foundation
import QuillCore
import QuillModels

/// AdamW (Loshchilov & Hutter 2019) as PyTorch computes it: decoupled weight decay
/// θ ← θ·(1 − lr·λ) on the entries that decay, then θ ← θ − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).
public final class AdamW: @unchecked Sendable {
    // @unchecked: updated by the training loop only, one step at a time.
    public struct Hyperparameters: Sendable, Equatable, Codable {
        public var beta1: Float = 0.9
        public var beta2: Float = 0.999
        public var epsilon: Float = 1e-8
        public var weightDecay: Float = 0.0
        public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.0) {
            self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay
        }
    }

    public let hyperparameters: Hyperparameters
    /// First and second moments, laid out as the parameters.
    public let m: ParameterStore, v: ParameterStore
    /// Updates taken so far.
    public var step = 0
    private let decays: [Bool]   // per parameter entry
    private let pool: ThreadPool

    public init(for parameters: ParameterStore, _ hyperparameters: Hyperparameters, pool: ThreadPool = .shared) {
        self.hyperparameters = hyperparameters
        m = ParameterStore(sameLayoutAs: parameters)
        v = ParameterStore(sameLayoutAs: parameters)
        decays = parameters.entries.map(\.decays)
        self.pool = pool
    }

    /// One update of `parameters` from `gradients` at learning rate `lr`.
    public func update(_ parameters: ParameterStore, gradients: ParameterStore, lr: Float) {
        precondition(parameters.count == m.count && gradients.count == m.count, "AdamW built for another layout")
        step += 1
        let h = hyperparameters
        let correction1 = 1 - pow(h.beta1, Float(step)), correction2Root = (1 - pow(h.beta2, Float(step))).squareRoot()
        let stepSize = lr / correction1, shrink = 1 - lr * h.weightDecay
        let p = parameters.base, g = gradients.base, m = m.base, v = v.base
        let (b1, b2, eps) = (h.beta1, h.beta2, h.epsilon)
        for (entry, decays) in zip(parameters.entries, decays) {
            let chunks = min(pool.threads * 4, max(1, entry.count / 65_536))
            pool.parallelFor(chunks) { chunk in
                let from = entry.offset + entry.count * chunk / chunks, to = entry.offset + entry.count * (chunk + 1) / chunks
                for i in from..<to {
                    if decays { p[i] *= shrink }
                    m[i] = b1 * m[i] + (1 - b1) * g[i]
                    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                    p[i] -= stepSize * m[i] / (v[i].squareRoot() / correction2Root + eps)
                }
            }
        }
    }
}

public enum GradientClipping {
    /// The global L2 norm of all gradients (accumulated in Double).
    public static func norm(_ gradients: ParameterStore) -> Double {
        var sum = 0.0
        let g = gradients.base
        for i in 0..<gradients.count { sum += Double(g[i]) * Double(g[i]) }
        return sum.squareRoot()
    }

    /// Scales the gradients so their global norm is at most `maxNorm` (PyTorch's
    /// clip_grad_norm_: factor maxNorm / (norm + 1e-6), capped at 1). Returns the norm before.
    @discardableResult
    public static func clip(_ gradients: ParameterStore, maxNorm: Double) -> Double {
        let total = norm(gradients)
        let factor = Float(min(1, maxNorm / (total + 1e-6)))
        if factor < 1 {
            let g = gradients.base
            for i in 0..<gradients.count { g[i] *= factor }
        }
        return total
    }
}
