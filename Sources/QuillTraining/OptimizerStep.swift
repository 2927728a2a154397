import Foundation
import QuillCore

/// One optimizer step as the training loop takes it: the gradients zeroed, each micro-batch's
/// forward and backward accumulated under one normalizer (the step's count of target tokens, so
/// the loss is one mean over the step, not a mean of micro-batch means), the global gradient norm
/// clipped, then AdamW. `Trainer.run` and `quill train bench` both step through here, so the
/// benchmark times exactly what training does.
///
/// ```swift
/// let stepper = OptimizerStep(model: model, hyperparameters: .init(weightDecay: 0.01), clip: 1)
/// let result = try stepper.take([MicroBatch(tokens: x, targets: y)], batch: 4, length: 256, lr: 1e-5)
/// ```
public final class OptimizerStep: @unchecked Sendable {
    // @unchecked: the training loop takes one step at a time.
    public let model: TrainableModel
    public let optimizer: AdamW
    /// The largest global gradient norm let through (PyTorch's clip_grad_norm_).
    public let clip: Double

    public init(model: TrainableModel, hyperparameters: AdamW.Hyperparameters, clip: Double) {
        self.model = model
        self.optimizer = AdamW(for: model.trainable.parameters, hyperparameters)
        self.clip = clip
    }

    /// Tokens [batch, length] and their targets (negative: no loss there) of one micro-batch.
    public struct MicroBatch: Sendable {
        public var tokens: [Int32], targets: [Int32]
        public init(tokens: [Int32], targets: [Int32]) { self.tokens = tokens; self.targets = targets }
        var targetCount: Int { targets.reduce(0) { $1 >= 0 ? $0 + 1 : $0 } }
    }

    /// What a step measured: the mean loss over its target tokens and the gradient norm before clipping.
    public struct Result: Sendable {
        public var loss: Double
        public var gradientNorm: Double
    }

    /// Takes one step over `microBatches` (each `batch` × `length`) at learning rate `lr`.
    public func take(_ microBatches: [MicroBatch], batch: Int, length: Int, lr: Float) throws -> Result {
        let (parameters, gradients) = model.trainable
        gradients.zero()
        let normalizer = max(1, microBatches.reduce(0) { $0 + $1.targetCount })
        var loss = 0.0
        for micro in microBatches {
            loss += try model.step(tokens: micro.tokens, targets: micro.targets, batch: batch, length: length,
                                   normalizer: Float(normalizer)).sum
        }
        let norm = GradientClipping.clip(gradients, maxNorm: clip)
        optimizer.update(parameters, gradients: gradients, lr: lr)
        return Result(loss: loss / Double(normalizer), gradientNorm: norm)
    }
}
