import Foundation
import QuillCore

extension TrainableModel {
    /// What the forward keeps for the backward; the rest is recomputed there.
    public enum ActivationMemory: String, Sendable, CaseIterable, Codable {
        /// q, k, v and the MLP's inputs per layer: the fastest (about 14 floats per channel and
        /// token and layer for SmolLM2).
        case keep
        /// Only each block's input, the residual after attention and the norms' statistics; the
        /// backward recomputes the q/k/v and MLP input projections (about a sixth more compute).
        case lean
        /// Only each block's input: the backward runs each block again (about a third more).
        case checkpointed
    }
}

/// Buffers of one forward pass at a given batch shape, kept for the backward as
/// `ActivationMemory` says. Never kept: norm outputs (recomputed from their input and
/// rstd), attention probabilities and output (recomputed from q, k, v: one more product per
/// head), the MLP's activation (from its inputs). Per-layer buffers live in slots: one per
/// layer, or a single one that each layer overwrites when the backward recomputes them.
final class ActivationBuffers {
    let n: Int, batch: Int, length: Int
    let memory: TrainableModel.ActivationMemory
    private var allocations: [UnsafeMutablePointer<Float>] = []
    var residual: [UnsafeMutablePointer<Float>] = []   // L+1 of [N, C]: block inputs, then the last output
    // per layer slot (one each, or one shared when checkpointed)
    var mid: [UnsafeMutablePointer<Float>] = []        // [N, C] after attention's residual add
    var mean1: [UnsafeMutablePointer<Float>] = [], rstd1: [UnsafeMutablePointer<Float>] = []
    var mean2: [UnsafeMutablePointer<Float>] = [], rstd2: [UnsafeMutablePointer<Float>] = []
    var adapterHidden: [[UnsafeMutablePointer<Float>]] = []  // per slot, per adapter of the slot's layer: [N, r] = x·Aᵀ
    // per projection slot (one per layer under .keep, else one shared)
    var q: [UnsafeMutablePointer<Float>] = [], k: [UnsafeMutablePointer<Float>] = [], v: [UnsafeMutablePointer<Float>] = []
    var hidden1: [UnsafeMutablePointer<Float>] = []    // [N, FF] llama: gate; gpt2: c_fc output
    var hidden2: [UnsafeMutablePointer<Float>] = []    // [N, FF] llama: up
    // Gemma's per-head query and key norms: their inputs and rstd (per projection slot)
    var qPre: [UnsafeMutablePointer<Float>] = [], kPre: [UnsafeMutablePointer<Float>] = []
    var qRstd: [UnsafeMutablePointer<Float>] = [], kRstd: [UnsafeMutablePointer<Float>] = []
    // Gemma's post-attention and post-feed-forward norms: their inputs [N, C] and rstd (per layer slot)
    var attentionOut: [UnsafeMutablePointer<Float>] = [], rstd3: [UnsafeMutablePointer<Float>] = []
    var feedForwardOut: [UnsafeMutablePointer<Float>] = [], rstd4: [UnsafeMutablePointer<Float>] = []
    // per adapter, under dropout: the mask (0 or 1 / (1 - p)) and x ⊙ mask
    var adapterMasks: [UnsafeMutablePointer<Float>?] = [], adapterInputs: [UnsafeMutablePointer<Float>?] = []
    let finalNorm: UnsafeMutablePointer<Float>, finalMean: UnsafeMutablePointer<Float>, finalRstd: UnsafeMutablePointer<Float>
    // scratch shared by all layers
    let norm: UnsafeMutablePointer<Float>              // [N, C] a norm's output
    let attention: UnsafeMutablePointer<Float>         // [N, qDim] before the output projection
    let activated: UnsafeMutablePointer<Float>         // [N, FF] silu(gate)·up or gelu(fc)
    let dResidual: UnsafeMutablePointer<Float>, dNorm: UnsafeMutablePointer<Float>, dAttention: UnsafeMutablePointer<Float>
    let dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>
    let dHidden1: UnsafeMutablePointer<Float>, dHidden2: UnsafeMutablePointer<Float>, dActivated: UnsafeMutablePointer<Float>
    let scratch: UnsafeMutablePointer<Float>   // [N, max(FF, 3C, qDim)]: a linear's output before the residual add, dQKV
    let dPost: UnsafeMutablePointer<Float>     // [N, C] a post-norm's input gradient (Gemma)
    let dqPre: UnsafeMutablePointer<Float>, dkPre: UnsafeMutablePointer<Float>   // before the q/k norms (Gemma)
    let capped: UnsafeMutablePointer<Float>    // [logitRows, V] tanh(logits / cap) under soft-capping
    let adapterScratch: UnsafeMutablePointer<Float>  // [N, r]
    let dropoutScratch: UnsafeMutablePointer<Float>  // [N, max in] under dropout
    let logits: UnsafeMutablePointer<Float>    // [logitRows, V]
    let logitRows: Int
    let positions: [Int32]

    /// `adapters[l]`: (inputs, rank) of layer l's adapters in the order the layer runs them.
    init(_ s: TrainableModel.Shape, batch: Int, length: Int, adapters: [[(inputs: Int, rank: Int)]], dropout: Bool,
         memory: TrainableModel.ActivationMemory) {
        self.batch = batch; self.length = length; self.memory = memory
        let checkpointing = memory == .checkpointed
        let n = batch * length, c = s.channels, ff = s.intermediateSize, layers = s.layers
        self.n = n
        logitRows = min(n, 128)
        var allocations: [UnsafeMutablePointer<Float>] = []
        func take(_ count: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count))
            p.initialize(repeating: 0, count: max(1, count))
            allocations.append(p)
            return p
        }
        let slots = checkpointing ? 1 : layers, projectionSlots = memory == .keep ? layers : 1
        func each(_ count: Int) -> [UnsafeMutablePointer<Float>] { (0..<slots).map { _ in take(count) } }
        func eachProjection(_ count: Int) -> [UnsafeMutablePointer<Float>] { (0..<projectionSlots).map { _ in take(count) } }
        residual = (0...layers).map { _ in take(n * c) }
        mid = each(n * c)
        mean1 = each(n); rstd1 = each(n); mean2 = each(n); rstd2 = each(n)
        q = eachProjection(n * s.qDim); k = eachProjection(n * s.kvDim); v = eachProjection(n * s.kvDim)
        hidden1 = eachProjection(n * ff); hidden2 = s.family == .gpt2 ? [] : eachProjection(n * ff)
        if s.gemmaNorms {
            qPre = eachProjection(n * s.qDim); kPre = eachProjection(n * s.kvDim)
            qRstd = eachProjection(n * s.heads); kRstd = eachProjection(n * s.kvHeads)
            attentionOut = each(n * c); rstd3 = each(n); feedForwardOut = each(n * c); rstd4 = each(n)
        }
        adapterHidden = (0..<slots).map { slot in
            (checkpointing ? adapters.max(by: { $0.count < $1.count }) ?? [] : adapters[slot]).map { take(n * $0.rank) }
        }
        let flat = adapters.flatMap { $0 }
        adapterMasks = flat.map { dropout ? take(n * $0.inputs) : nil }
        adapterInputs = flat.map { dropout ? take(n * $0.inputs) : nil }
        dropoutScratch = take(dropout ? n * (flat.map(\.inputs).max() ?? 0) : 0)
        adapterScratch = take(n * (flat.map(\.rank).max() ?? 0))
        finalNorm = take(n * c); finalMean = take(n); finalRstd = take(n)
        norm = take(n * c); activated = take(n * ff); attention = take(n * s.qDim)
        dResidual = take(n * c); dNorm = take(n * c); dAttention = take(n * s.qDim)
        dq = take(n * s.qDim); dk = take(n * s.kvDim); dv = take(n * s.kvDim)
        dHidden1 = take(n * ff); dHidden2 = take(n * ff); dActivated = take(n * ff)
        scratch = take(n * max(ff, 3 * c, s.qDim))
        dPost = take(s.gemmaNorms ? n * c : 0)
        dqPre = take(s.gemmaNorms ? n * s.qDim : 0); dkPre = take(s.gemmaNorms ? n * s.kvDim : 0)
        logits = take(logitRows * s.vocabularySize)
        capped = take(s.finalLogitSoftcap == nil ? 0 : logitRows * s.vocabularySize)
        positions = (0..<n).map { Int32($0 % length) }
        self.allocations = allocations
    }

    deinit { for p in allocations { p.deallocate() } }
}
