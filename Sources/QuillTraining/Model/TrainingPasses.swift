import Foundation
import QuillModels
import QuillCore

/// A batch's summed loss and how many target tokens it covered.
public struct LossSum: Sendable, Equatable {
    public var sum: Double
    public var count: Int
    public init(sum: Double = 0, count: Int = 0) { self.sum = sum; self.count = count }
    public var mean: Double { count == 0 ? .nan : sum / Double(count) }
    public static func + (a: LossSum, b: LossSum) -> LossSum { LossSum(sum: a.sum + b.sum, count: a.count + b.count) }
    mutating func add(sum: Double, count: Int) { self.sum += sum; self.count += count }
}

extension TrainableModel {
    /// Runs tokens [B, T] forward, scores the next-token predictions against targets [B, T]
    /// (negative = no loss at that position) and, when `backward`, adds d(loss / normalizer)/dθ
    /// to the gradients. `normalizer` is the number of target tokens of the whole optimizer step,
    /// so micro-batches accumulate into one mean, not a mean of means.
    @discardableResult
    public func step(tokens: [Int32], targets: [Int32], batch: Int, length: Int, normalizer: Float,
                     backward: Bool = true) throws -> LossSum {
        try validate(tokens: tokens, batch: batch, length: length)
        precondition(targets.count == tokens.count, "one target per token")
        guard !backward || !hasQuantizedBase || lora != nil else {
            throw LoRAError.invalid("a quantized base only trains LoRA adapters: attach them first")
        }
        let a = activations(batch: batch, length: length)
        applyingDropout = backward   // evaluation sees the whole adapter
        tokens.withUnsafeBufferPointer { forwardBlocks(a, tokens: $0.baseAddress!) }
        let loss = targets.withUnsafeBufferPointer { head(a, targets: $0.baseAddress!, normalizer: normalizer, backward: backward) }
        if backward { tokens.withUnsafeBufferPointer { backwardBlocks(a, tokens: $0.baseAddress!) } }
        return loss
    }

    /// The loss of each of the batch's windows (no gradients): evaluation's per-window figures,
    /// which paired comparisons resample.
    public func windowLosses(tokens: [Int32], targets: [Int32], batch: Int, length: Int) throws -> [LossSum] {
        try validate(tokens: tokens, batch: batch, length: length)
        precondition(targets.count == tokens.count, "one target per token")
        let a = activations(batch: batch, length: length)
        applyingDropout = false
        tokens.withUnsafeBufferPointer { forwardBlocks(a, tokens: $0.baseAddress!) }
        var windows: [LossSum]? = [LossSum](repeating: LossSum(), count: batch)
        _ = targets.withUnsafeBufferPointer { head(a, targets: $0.baseAddress!, normalizer: 1, backward: false, windows: &windows) }
        return windows!
    }

    /// Logits [B·T, V] of every position (for tests and evaluation).
    public func logits(tokens: [Int32], batch: Int, length: Int) throws -> [Float] {
        try validate(tokens: tokens, batch: batch, length: length)
        let a = activations(batch: batch, length: length)
        applyingDropout = false
        tokens.withUnsafeBufferPointer { forwardBlocks(a, tokens: $0.baseAddress!) }
        let v = shape.vocabularySize, c = shape.channels
        var out = [Float](repeating: 0, count: a.n * v)
        out.withUnsafeMutableBufferPointer {
            Matmul.forward($0.baseAddress!, a.finalNorm, parameters.pointer(wiring.head), nil, n: a.n, c: c, oc: v, pool: pool)
            if let cap = shape.finalLogitSoftcap { Layers.softcap($0, cap: cap) }
        }
        return out
    }

    private func validate(tokens: [Int32], batch: Int, length: Int) throws {
        precondition(batch > 0 && length > 0 && tokens.count == batch * length, "tokens must be [batch, length]")
        guard length <= shape.contextLength else { throw ModelError.contextOverflow(tokens: length, context: shape.contextLength) }
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= shape.vocabularySize }) {
            throw ModelError.tokenOutOfRange(id: bad, vocabularySize: shape.vocabularySize)
        }
    }

    // MARK: forward

    private func forwardBlocks(_ a: ActivationBuffers, tokens: UnsafePointer<Int32>) {
        let s = shape, n = a.n, c = s.channels
        let embedding = parameters.pointer(wiring.embedding)
        for i in 0..<n { a.residual[0].advanced(by: i * c).update(from: embedding + Int(tokens[i]) * c, count: c) }
        if s.embeddingScale != 1 { for i in 0..<(n * c) { a.residual[0][i] *= s.embeddingScale } }
        if s.family == .gpt2 {
            let wpe = parameters.pointer(wiring.position)
            for i in 0..<n { let row = a.residual[0] + i * c, p = wpe + Int(a.positions[i]) * c; for k in 0..<c { row[k] += p[k] } }
        }
        for l in wiring.blocks.indices { forwardBlock(l, a, recompute: false) }
        normForward(wiring.finalNorm, out: a.finalNorm, mean: a.finalMean, rstd: a.finalRstd, x: a.residual[s.layers], n: n)
    }

    /// Block l from residual[l] to residual[l+1], keeping what its backward needs in its slot.
    /// `recompute`: the backward's second run under checkpointing (same dropout masks).
    private func forwardBlock(_ l: Int, _ a: ActivationBuffers, recompute: Bool) {
        let s = shape, n = a.n, c = s.channels, block = wiring.blocks[l]
        let slot = a.memory == .checkpointed ? 0 : l, p = a.memory == .keep ? l : 0, x = a.residual[l]
        normForward(block.norm1, out: a.norm, mean: a.mean1[slot], rstd: a.rstd1[slot], x: x, n: n)
        projectQKV(l, a, slot: slot, p: p, recompute: recompute)
        Layers.causalAttentionForward(a.attention, q: a.q[p], k: a.k[p], v: a.v[p],
                                      batch: a.batch, length: a.length, heads: s.heads, kvHeads: s.kvHeads,
                                      headSize: s.headSize, window: s.window(layer: l), scale: s.attentionScale, pool: pool)
        if let post = block.postAttentionNorm {   // Gemma: the output projection's result is normalized first
            linearForward(block.output, out: a.attentionOut[slot], x: a.attention, a, slot: slot, recompute: recompute)
            Layers.rmsnormForward(a.scratch, rstd: a.rstd3[slot], a.attentionOut[slot], parameters.pointer(post), n: n, c: c,
                                  eps: s.normEpsilon, pool: pool)
        } else {
            linearForward(block.output, out: a.scratch, x: a.attention, a, slot: slot, recompute: recompute)
        }
        add(a.mid[slot], x, a.scratch, count: n * c)
        normForward(block.norm2, out: a.norm, mean: a.mean2[slot], rstd: a.rstd2[slot], x: a.mid[slot], n: n)
        projectMLP(block, a, slot: slot, p: p, recompute: recompute)
        activate(a, p: p)
        if let post = block.postFeedForwardNorm {
            linearForward(block.down, out: a.feedForwardOut[slot], x: a.activated, a, slot: slot, recompute: recompute)
            Layers.rmsnormForward(a.scratch, rstd: a.rstd4[slot], a.feedForwardOut[slot], parameters.pointer(post), n: n, c: c,
                                  eps: s.normEpsilon, pool: pool)
        } else {
            linearForward(block.down, out: a.scratch, x: a.activated, a, slot: slot, recompute: recompute)
        }
        add(a.residual[l + 1], a.mid[slot], a.scratch, count: n * c)
    }

    /// The MLP's activation of its inputs into a.activated: silu(gate)·up, gelu(gate)·up or gelu(fc).
    private func activate(_ a: ActivationBuffers, p: Int) {
        let count = a.n * shape.intermediateSize
        switch (shape.family, shape.feedForwardActivation) {
        case (.llama, .silu): Layers.swiglu(a.activated, a.hidden1[p], a.hidden2[p], count: count)
        case (.llama, .geluTanh): Layers.geglu(a.activated, a.hidden1[p], a.hidden2[p], count: count)
        case (.gpt2, _): Layers.geluForward(a.activated, a.hidden1[p], count: count, pool: pool)
        }
    }

    /// The gradients of `activate`'s inputs from a.dActivated: dHidden1 and dHidden2 (gated),
    /// or dHidden1 (GPT-2's gelu), overwritten.
    private func activateBackward(_ a: ActivationBuffers, p: Int) {
        let count = a.n * shape.intermediateSize
        switch (shape.family, shape.feedForwardActivation) {
        case (.llama, .silu):
            Layers.swigluBackward(dgate: a.dHidden1, dup: a.dHidden2, dout: a.dActivated, gate: a.hidden1[p], up: a.hidden2[p],
                                  count: count, pool: pool)
        case (.llama, .geluTanh):
            Layers.gegluBackward(dgate: a.dHidden1, dup: a.dHidden2, dout: a.dActivated, gate: a.hidden1[p], up: a.hidden2[p],
                                 count: count, pool: pool)
        case (.gpt2, _):
            a.dHidden1.update(repeating: 0, count: count)
            Layers.geluBackward(dx: a.dHidden1, dout: a.dActivated, x: a.hidden1[p], count: count, pool: pool)
        }
    }

    /// q, k, v [N, ·] of a norm output in a.norm, after RoPE (Llama) or split from c_attn (GPT-2).
    private func projectQKV(_ l: Int, _ a: ActivationBuffers, slot: Int, p: Int, recompute: Bool) {
        let s = shape, n = a.n, c = s.channels, block = wiring.blocks[l]
        if s.family == .llama {
            let headNorms = block.queryNorm != nil   // Gemma: each head normalized before RoPE
            linearForward(block.attention[0], out: headNorms ? a.qPre[p] : a.q[p], x: a.norm, a, slot: slot, recompute: recompute)
            linearForward(block.attention[1], out: headNorms ? a.kPre[p] : a.k[p], x: a.norm, a, slot: slot, recompute: recompute)
            if let queryNorm = block.queryNorm, let keyNorm = block.keyNorm {
                Layers.rmsnormForward(a.q[p], rstd: a.qRstd[p], a.qPre[p], parameters.pointer(queryNorm), n: n * s.heads,
                                      c: s.headSize, eps: s.normEpsilon, pool: pool)
                Layers.rmsnormForward(a.k[p], rstd: a.kRstd[p], a.kPre[p], parameters.pointer(keyNorm), n: n * s.kvHeads,
                                      c: s.headSize, eps: s.normEpsilon, pool: pool)
            }
            linearForward(block.attention[2], out: a.v[p], x: a.norm, a, slot: slot, recompute: recompute)
            let frequencies = s.inverseFrequencies(layer: l)
            a.positions.withUnsafeBufferPointer { positions in
                Layers.rope(a.q[p], positions: positions.baseAddress!, n: n, heads: s.heads, headSize: s.headSize,
                            inverseFrequencies: frequencies, pairing: .halves, attentionFactor: s.ropeAttentionFactor)
                Layers.rope(a.k[p], positions: positions.baseAddress!, n: n, heads: s.kvHeads, headSize: s.headSize,
                            inverseFrequencies: frequencies, pairing: .halves, attentionFactor: s.ropeAttentionFactor)
            }
        } else {
            linearForward(block.attention[0], out: a.scratch, x: a.norm, a, slot: slot, recompute: recompute)
            for i in 0..<n {
                let row = a.scratch + i * 3 * c
                (a.q[p] + i * c).update(from: row, count: c)
                (a.k[p] + i * c).update(from: row + c, count: c)
                (a.v[p] + i * c).update(from: row + 2 * c, count: c)
            }
        }
    }

    /// The MLP's input projections of a norm output in a.norm: gate and up, or c_fc.
    private func projectMLP(_ block: Block, _ a: ActivationBuffers, slot: Int, p: Int, recompute: Bool) {
        linearForward(block.mlp[0], out: a.hidden1[p], x: a.norm, a, slot: slot, recompute: recompute)
        if shape.family == .llama { linearForward(block.mlp[1], out: a.hidden2[p], x: a.norm, a, slot: slot, recompute: recompute) }
    }

    /// The output head and loss, a chunk of rows at a time so [N, V] logits never exist at
    /// once; with `backward`, dloss/dlogits goes straight into the head's gradient and dNorm.
    private func head(_ a: ActivationBuffers, targets: UnsafePointer<Int32>, normalizer: Float, backward: Bool) -> LossSum {
        var windows: [LossSum]? = nil
        return head(a, targets: targets, normalizer: normalizer, backward: backward, windows: &windows)
    }

    /// The loss over logits taken `a.logitRows` at a time. With `windows`, pieces stop at window
    /// ends and each window's loss is added to its entry.
    private func head(_ a: ActivationBuffers, targets: UnsafePointer<Int32>, normalizer: Float, backward: Bool,
                      windows: inout [LossSum]?) -> LossSum {
        let c = shape.channels, v = shape.vocabularySize
        let weight = parameters.pointer(wiring.head), dweight = gradients?.pointer(wiring.head)
        if backward { a.dNorm.update(repeating: 0, count: a.n * c) }
        var total = LossSum()
        var first = 0
        while first < a.n {
            let rows = windows == nil ? min(a.logitRows, a.n - first) : min(a.logitRows, a.length - first % a.length)
            defer { first += rows }
            guard (0..<rows).contains(where: { targets[first + $0] >= 0 }) else { continue }
            Matmul.forward(a.logits, a.finalNorm + first * c, weight, nil, n: rows, c: c, oc: v, pool: pool)
            if let cap = shape.finalLogitSoftcap {   // logits = cap · t with t = tanh(raw / cap), t kept
                for i in 0..<(rows * v) { a.capped[i] = tanh(a.logits[i] / cap); a.logits[i] = cap * a.capped[i] }
            }
            let (sum, count) = Layers.crossEntropyBackward(a.logits, targets: targets + first, n: rows, vocabulary: v,
                                                           normalizer: normalizer, pool: pool)
            if backward, shape.finalLogitSoftcap != nil {   // d raw = d logits · (1 − t²)
                for i in 0..<(rows * v) { a.logits[i] *= 1 - a.capped[i] * a.capped[i] }
            }
            total = total + LossSum(sum: sum, count: count)
            windows?[first / a.length].add(sum: sum, count: count)
            if backward {
                Matmul.backward(dinp: a.dNorm + first * c, dweight: dweight, dbias: nil, dout: a.logits,
                                inp: a.finalNorm + first * c, weight: weight, n: rows, c: c, oc: v, pool: pool)
            }
        }
        return total
    }

    // MARK: backward

    private func backwardBlocks(_ a: ActivationBuffers, tokens: UnsafePointer<Int32>) {
        let s = shape, n = a.n, c = s.channels, ff = s.intermediateSize
        a.dResidual.update(repeating: 0, count: n * c)
        normBackward(wiring.finalNorm, dx: a.dResidual, dout: a.dNorm, x: a.residual[s.layers], mean: a.finalMean, rstd: a.finalRstd, n: n)
        for (l, block) in wiring.blocks.enumerated().reversed() {
            let slot = a.memory == .checkpointed ? 0 : l, p = a.memory == .keep ? l : 0
            switch a.memory {
            case .checkpointed:
                forwardBlock(l, a, recompute: true)   // leaves norm2's output and the MLP's inputs in place
            case .lean:
                normForward(block.norm2, out: a.norm, mean: a.mean2[slot], rstd: a.rstd2[slot], x: a.mid[slot], n: n)
                projectMLP(block, a, slot: slot, p: p, recompute: true)
            case .keep:
                normForward(block.norm2, out: a.norm, mean: a.mean2[slot], rstd: a.rstd2[slot], x: a.mid[slot], n: n)
            }
            // residual[l+1] = mid + [postnorm](down(mlp(norm2(mid))))
            a.dActivated.update(repeating: 0, count: n * ff)
            a.dNorm.update(repeating: 0, count: n * c)
            let dDown = postNormBackward(block.postFeedForwardNorm, a, dout: a.dResidual, x: a.feedForwardOut, rstd: a.rstd4, slot: slot)
            activate(a, p: p)
            linearBackward(block.down, dinp: a.dActivated, dout: dDown, x: a.activated, a, slot: slot)
            activateBackward(a, p: p)
            linearBackward(block.mlp[0], dinp: a.dNorm, dout: a.dHidden1, x: a.norm, a, slot: slot)
            if s.family == .llama { linearBackward(block.mlp[1], dinp: a.dNorm, dout: a.dHidden2, x: a.norm, a, slot: slot) }
            normBackward(block.norm2, dx: a.dResidual, dout: a.dNorm, x: a.mid[slot], mean: a.mean2[slot], rstd: a.rstd2[slot], n: n)

            // mid = residual[l] + output(attention(norm1(residual[l])))
            // the output projection's input gradient first: the attention's backward recomputes its input
            a.dAttention.update(repeating: 0, count: n * s.qDim)
            let dOutput = postNormBackward(block.postAttentionNorm, a, dout: a.dResidual, x: a.attentionOut, rstd: a.rstd3, slot: slot)
            linearBackward(block.output, dinp: a.dAttention, dout: dOutput, x: a.attention, a, slot: slot, parts: .input)
            normForward(block.norm1, out: a.norm, mean: a.mean1[slot], rstd: a.rstd1[slot], x: a.residual[l], n: n)
            if a.memory == .lean { projectQKV(l, a, slot: slot, p: p, recompute: true) }
            Layers.causalAttentionBackward(dq: a.dq, dk: a.dk, dv: a.dv, out: a.attention, dout: a.dAttention,
                                           q: a.q[p], k: a.k[p], v: a.v[p], batch: a.batch, length: a.length,
                                           heads: s.heads, kvHeads: s.kvHeads, headSize: s.headSize, window: s.window(layer: l),
                                           scale: s.attentionScale, pool: pool)
            linearBackward(block.output, dinp: a.dAttention, dout: dOutput, x: a.attention, a, slot: slot, parts: .weights)
            a.dNorm.update(repeating: 0, count: n * c)
            if s.family == .llama {
                let frequencies = s.inverseFrequencies(layer: l)
                a.positions.withUnsafeBufferPointer { positions in
                    Layers.ropeBackward(a.dq, positions: positions.baseAddress!, n: n, heads: s.heads, headSize: s.headSize,
                                        inverseFrequencies: frequencies, pairing: .halves, attentionFactor: s.ropeAttentionFactor)
                    Layers.ropeBackward(a.dk, positions: positions.baseAddress!, n: n, heads: s.kvHeads, headSize: s.headSize,
                                        inverseFrequencies: frequencies, pairing: .halves, attentionFactor: s.ropeAttentionFactor)
                }
                var dq = UnsafePointer(a.dq), dk = UnsafePointer(a.dk)
                if let queryNorm = block.queryNorm, let keyNorm = block.keyNorm {   // Gemma: through the per-head norms
                    a.dqPre.update(repeating: 0, count: n * s.qDim)
                    a.dkPre.update(repeating: 0, count: n * s.kvDim)
                    Layers.rmsnormBackward(dx: a.dqPre, dweight: gradients?.pointer(queryNorm), dout: a.dq, x: a.qPre[p],
                                           weight: parameters.pointer(queryNorm), rstd: a.qRstd[p], n: n * s.heads, c: s.headSize, pool: pool)
                    Layers.rmsnormBackward(dx: a.dkPre, dweight: gradients?.pointer(keyNorm), dout: a.dk, x: a.kPre[p],
                                           weight: parameters.pointer(keyNorm), rstd: a.kRstd[p], n: n * s.kvHeads, c: s.headSize, pool: pool)
                    dq = UnsafePointer(a.dqPre); dk = UnsafePointer(a.dkPre)
                }
                linearBackward(block.attention[0], dinp: a.dNorm, dout: dq, x: a.norm, a, slot: slot)
                linearBackward(block.attention[1], dinp: a.dNorm, dout: dk, x: a.norm, a, slot: slot)
                linearBackward(block.attention[2], dinp: a.dNorm, dout: a.dv, x: a.norm, a, slot: slot)
            } else {
                for i in 0..<n {
                    let row = a.scratch + i * 3 * c
                    row.update(from: a.dq + i * c, count: c)
                    (row + c).update(from: a.dk + i * c, count: c)
                    (row + 2 * c).update(from: a.dv + i * c, count: c)
                }
                linearBackward(block.attention[0], dinp: a.dNorm, dout: a.scratch, x: a.norm, a, slot: slot)
            }
            normBackward(block.norm1, dx: a.dResidual, dout: a.dNorm, x: a.residual[l], mean: a.mean1[slot], rstd: a.rstd1[slot], n: n)
        }
        guard let gradients else { return }
        if s.embeddingScale != 1 { for i in 0..<(n * c) { a.dResidual[i] *= s.embeddingScale } }
        Layers.embeddingBackward(gradients.pointer(wiring.embedding), dout: a.dResidual, tokens: tokens, n: n, c: c)
        if s.family == .gpt2 {
            let dwpe = gradients.pointer(wiring.position)
            for i in 0..<n { let row = dwpe + Int(a.positions[i]) * c, d = a.dResidual + i * c; for k in 0..<c { row[k] += d[k] } }
        }
    }

    // MARK: the layers, by family

    /// RMSNorm (Llama) or LayerNorm (GPT-2, whose bias is `weight` with ".bias").
    private func normForward(_ weight: String, out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                             rstd: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, n: Int) {
        let c = shape.channels, w = parameters.pointer(weight)
        if shape.family == .llama {
            Layers.rmsnormForward(out, rstd: rstd, x, w, n: n, c: c, eps: shape.normEpsilon, pool: pool)
        } else {
            Layers.layernormForward(out, mean: mean, rstd: rstd, x, w, parameters.pointer(Self.biasName(weight)),
                                    n: n, c: c, eps: shape.normEpsilon, pool: pool)
        }
    }

    private func normBackward(_ weight: String, dx: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                              x: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, n: Int) {
        let c = shape.channels, w = parameters.pointer(weight)
        if shape.family == .llama {
            Layers.rmsnormBackward(dx: dx, dweight: gradients?.pointer(weight), dout: dout, x: x, weight: w, rstd: rstd,
                                   n: n, c: c, pool: pool)
        } else {
            Layers.layernormBackward(dx: dx, dweight: gradients?.pointer(weight), dbias: gradients?.pointer(Self.biasName(weight)),
                                     dout: dout, x: x, weight: w, mean: mean, rstd: rstd, n: n, c: c, pool: pool)
        }
    }

    /// The gradient reaching the layer below a post-norm (Gemma): into a.dPost through the norm
    /// of x[slot]; without a norm, `dout` itself.
    private func postNormBackward(_ norm: String?, _ a: ActivationBuffers, dout: UnsafePointer<Float>,
                                  x: [UnsafeMutablePointer<Float>], rstd: [UnsafeMutablePointer<Float>], slot: Int) -> UnsafePointer<Float> {
        guard let norm else { return dout }
        a.dPost.update(repeating: 0, count: a.n * shape.channels)
        Layers.rmsnormBackward(dx: a.dPost, dweight: gradients?.pointer(norm), dout: dout, x: x[slot], weight: parameters.pointer(norm),
                               rstd: rstd[slot], n: a.n, c: shape.channels, pool: pool)
        return UnsafePointer(a.dPost)
    }

    static func biasName(_ weight: String) -> String { String(weight.dropLast("weight".count)) + "bias" }

    /// out[N, out] = x · Wᵀ + b, plus s · (dropout(x) · Aᵀ) · Bᵀ when the layer has an adapter.
    private func linearForward(_ linear: Linear, out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, _ a: ActivationBuffers,
                               slot: Int, recompute: Bool) {
        let n = a.n
        let bias = parameters.contains(linear.bias) ? parameters.pointer(linear.bias) : nil
        Matmul.forward(out, x, weightPointer(linear.weight), bias, n: n, c: linear.inputs, oc: linear.outputs, pool: pool)
        guard let index = linear.adapter, let lora else { return }
        let adapter = lora.adapters[index], r = adapter.rank
        var input = x
        let hidden = a.adapterHidden[slot][linear.adapterInBlock]
        if applyingDropout, let dropped = a.adapterInputs[index], let mask = a.adapterMasks[index] {
            let p = lora.configuration.dropout, keep = 1 / (1 - p), count = n * linear.inputs
            if !recompute { for i in 0..<count { mask[i] = lora.random.nextUnitFloat() < p ? 0 : keep } }
            for i in 0..<count { dropped[i] = x[i] * mask[i] }
            input = UnsafePointer(dropped)
        }
        Matmul.forward(hidden, input, lora.parameters.pointer(adapter.aName), nil,
                       n: n, c: linear.inputs, oc: r, pool: pool)
        Matmul.forEachSlice(oc: n, n: linear.outputs, c: r, pool: pool) { rows in
            Matmul.gemm(out + rows.lowerBound * linear.outputs, ldc: linear.outputs, hidden + rows.lowerBound * r,
                        lda: r, lora.parameters.pointer(adapter.bName), ldb: r, m: rows.count, n: linear.outputs, k: r,
                        alpha: lora.configuration.scale, beta: 1, transposeB: true)
        }
    }

    /// Which gradients a linear layer's backward computes: its input's, its weights', or both.
    struct BackwardParts: OptionSet {
        let rawValue: Int
        static let input = BackwardParts(rawValue: 1), weights = BackwardParts(rawValue: 2)
        static let both: BackwardParts = [.input, .weights]
    }

    /// dinp += dout · W (+ the adapter's path); dW, db += when the base trains; dA, dB += under
    /// LoRA. `x` is only read for the weights' part.
    private func linearBackward(_ linear: Linear, dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                x: UnsafePointer<Float>, _ a: ActivationBuffers, slot: Int, parts: BackwardParts = .both) {
        let n = a.n, inputs = linear.inputs, outputs = linear.outputs
        let hasBias = parameters.contains(linear.bias)
        let weights = parts.contains(.weights) ? gradients : nil
        if parts.contains(.input) || weights != nil {
            Matmul.backward(dinp: parts.contains(.input) ? dinp : nil, dweight: weights?.pointer(linear.weight),
                            dbias: hasBias ? weights?.pointer(linear.bias) : nil, dout: dout, inp: x,
                            weight: parts.contains(.input) ? weightPointer(linear.weight) : UnsafePointer(parameters.pointer(linear.weight)),
                            n: n, c: inputs, oc: outputs, pool: pool)
        }
        guard let index = linear.adapter, let lora else { return }
        let adapter = lora.adapters[index], r = adapter.rank, scale = lora.configuration.scale
        let hidden = a.adapterHidden[slot][linear.adapterInBlock], dh = a.adapterScratch
        let aWeight = lora.parameters.pointer(adapter.aName), bWeight = lora.parameters.pointer(adapter.bName)
        // dh[N, r] = s · dout · B (both parts need it; it is cheap)
        dh.update(repeating: 0, count: n * r)
        Matmul.backward(dinp: dh, dweight: nil, dbias: nil, dout: dout, inp: hidden, weight: bWeight,
                        n: n, c: r, oc: outputs, pool: pool, scale: scale)
        if parts.contains(.weights) {
            // dB[out, r] += s · doutᵀ · h;  dA[r, in] += dhᵀ · dropout(x)
            Matmul.backward(dinp: nil, dweight: lora.gradients.pointer(adapter.bName), dbias: nil, dout: dout, inp: hidden,
                            weight: bWeight, n: n, c: r, oc: outputs, pool: pool, scale: scale)
            // under dropout, the forward's x ⊙ mask (the backward's x is the forward's, recomputed exactly)
            let input = a.adapterInputs[index].map { UnsafePointer($0) } ?? x
            Matmul.backward(dinp: nil, dweight: lora.gradients.pointer(adapter.aName), dbias: nil, dout: dh, inp: input,
                            weight: aWeight, n: n, c: inputs, oc: r, pool: pool)
        }
        if parts.contains(.input) {
            // dinp += dropout'(dh · A)
            if let mask = a.adapterMasks[index] {
                let through = a.dropoutScratch
                through.update(repeating: 0, count: n * inputs)
                Matmul.backward(dinp: through, dweight: nil, dbias: nil, dout: dh, inp: x, weight: aWeight, n: n, c: inputs, oc: r, pool: pool)
                for i in 0..<(n * inputs) { dinp[i] += through[i] * mask[i] }
            } else {
                Matmul.backward(dinp: dinp, dweight: nil, dbias: nil, dout: dh, inp: x, weight: aWeight, n: n, c: inputs, oc: r, pool: pool)
            }
        }
    }

    private func add(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { out[i] = a[i] + b[i] }
    }
}
