import Foundation

/// The learning rate of each optimizer step: a linear warmup (step i of W uses (i+1)/W of the
/// peak, so the first step already learns), then constant, linear decay to zero, or a cosine
/// down to `minimumRatio` of the peak at the last step.
public struct LearningRateSchedule: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable { case constant, linear, cosine }

    public var kind: Kind
    public var peak: Float
    public var warmupSteps: Int
    public var totalSteps: Int
    public var minimumRatio: Float

    public init(_ kind: Kind, peak: Float, warmupSteps: Int = 0, totalSteps: Int, minimumRatio: Float = 0) {
        self.kind = kind; self.peak = peak; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps; self.minimumRatio = minimumRatio
    }

    /// The rate for 0-based optimizer step `step`.
    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps), done = Float(step - warmupSteps) / Float(span)
        switch kind {
        case .constant: return peak
        case .linear: return peak * max(0, 1 - done)
        case .cosine:
            let progress = min(1, done)
            return peak * (minimumRatio + (1 - minimumRatio) * 0.5 * (1 + Float(cos(Double.pi * Double(progress)))))
        }
    }
}
