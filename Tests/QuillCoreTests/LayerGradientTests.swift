import Foundation
import QuillCore
import Testing

/// Each layer's backward against central finite differences of its forward, in the manner of
/// llm.c's test: the loss is Σ out · w for a fixed random w, so dloss/dout = w.
@Suite("Layer gradients against finite differences") struct LayerGradientTests {
    struct Random {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Double(state >> 11) / Double(1 << 53)) * 2 - 1
        }
        mutating func array(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in next() * scale } }
    }

    /// Compares `analytic` (dloss/dx) with (loss(x + h) − loss(x − h)) / 2h at every entry;
    /// the forward is evaluated in Float, so h = 1e-2 and a relative tolerance of 1e-2.
    func check(_ name: String, _ x: [Float], analytic: [Float], loss: ([Float]) -> Double) {
        var worst = 0.0
        let scale = max(1e-3, Double(analytic.map { abs($0) }.max() ?? 0))
        for i in x.indices {
            var plus = x, minus = x
            plus[i] += 1e-2; minus[i] -= 1e-2
            let numeric = (loss(plus) - loss(minus)) / 2e-2
            worst = max(worst, abs(numeric - Double(analytic[i])) / scale)
        }
        #expect(worst < 1e-2, "\(name): worst error \(worst) relative to the largest gradient")
    }

    static func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }

    @Test func linear() {
        var r = Random(state: 1)
        let (n, c, oc) = (3, 5, 4)
        let x = r.array(n * c), w = r.array(oc * c), b = r.array(oc), dout = r.array(n * oc)
        func forward(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n * oc)
            Matmul.reference(&out, x, w, b, n: n, c: c, oc: oc)
            return Self.dot(out, dout)
        }
        var dx = [Float](repeating: 0, count: n * c), dw = [Float](repeating: 0, count: oc * c), db = [Float](repeating: 0, count: oc)
        Matmul.backward(dinp: &dx, dweight: &dw, dbias: &db, dout: dout, inp: x, weight: w, n: n, c: c, oc: oc)
        check("linear dx", x, analytic: dx) { forward($0, w, b) }
        check("linear dw", w, analytic: dw) { forward(x, $0, b) }
        check("linear db", b, analytic: db) { forward(x, w, $0) }
        var dx2 = [Float](repeating: 0, count: n * c), dw2 = [Float](repeating: 0, count: oc * c), db2 = [Float](repeating: 0, count: oc)
        Matmul.backwardReference(dinp: &dx2, dweight: &dw2, dbias: &db2, dout: dout, inp: x, weight: w, n: n, c: c, oc: oc)
        #expect(zip(dx, dx2).allSatisfy { abs($0 - $1) < 1e-5 } && zip(dw, dw2).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test func rmsnorm() {
        var r = Random(state: 2)
        let (n, c) = (3, 8)
        let x = r.array(n * c), w = r.array(c), dout = r.array(n * c)
        func forward(_ x: [Float], _ w: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n * c), rstd = [Float](repeating: 0, count: n)
            Layers.rmsnormForward(&out, rstd: &rstd, x, w, n: n, c: c, eps: 1e-5)
            return Self.dot(out, dout)
        }
        var out = [Float](repeating: 0, count: n * c), rstd = [Float](repeating: 0, count: n)
        Layers.rmsnormForward(&out, rstd: &rstd, x, w, n: n, c: c, eps: 1e-5)
        var dx = [Float](repeating: 0, count: n * c), dw = [Float](repeating: 0, count: c)
        Layers.rmsnormBackward(dx: &dx, dweight: &dw, dout: dout, x: x, weight: w, rstd: rstd, n: n, c: c)
        check("rmsnorm dx", x, analytic: dx) { forward($0, w) }
        check("rmsnorm dw", w, analytic: dw) { forward(x, $0) }
    }

    @Test func layernorm() {
        var r = Random(state: 3)
        let (n, c) = (3, 8)
        let x = r.array(n * c), w = r.array(c), b = r.array(c), dout = r.array(n * c)
        func forward(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n * c), mean = [Float](repeating: 0, count: n), rstd = mean
            Layers.layernormForward(&out, mean: &mean, rstd: &rstd, x, w, b, n: n, c: c, eps: 1e-5)
            return Self.dot(out, dout)
        }
        var out = [Float](repeating: 0, count: n * c), mean = [Float](repeating: 0, count: n), rstd = mean
        Layers.layernormForward(&out, mean: &mean, rstd: &rstd, x, w, b, n: n, c: c, eps: 1e-5)
        var dx = [Float](repeating: 0, count: n * c), dw = [Float](repeating: 0, count: c), db = dw
        Layers.layernormBackward(dx: &dx, dweight: &dw, dbias: &db, dout: dout, x: x, weight: w, mean: mean, rstd: rstd, n: n, c: c)
        check("layernorm dx", x, analytic: dx) { forward($0, w, b) }
        check("layernorm dw", w, analytic: dw) { forward(x, $0, b) }
        check("layernorm db", b, analytic: db) { forward(x, w, $0) }
    }

    @Test(arguments: [Layers.RopePairing.halves, .adjacent]) func rope(_ pairing: Layers.RopePairing) {
        var r = Random(state: 4)
        let (n, heads, hs) = (4, 2, 8)
        let x = r.array(n * heads * hs), dout = r.array(n * heads * hs)
        let positions: [Int32] = [0, 3, 7, 20], frequencies = (0..<(hs / 2)).map { Float(pow(10_000, -2 * Double($0) / Double(hs))) }
        func forward(_ x: [Float]) -> Double {
            var y = x
            Layers.rope(&y, positions: positions, n: n, heads: heads, headSize: hs, inverseFrequencies: frequencies, pairing: pairing)
            return Self.dot(y, dout)
        }
        var dx = dout
        Layers.ropeBackward(&dx, positions: positions, n: n, heads: heads, headSize: hs, inverseFrequencies: frequencies, pairing: pairing)
        check("rope", x, analytic: dx, loss: forward)
    }

    @Test func activations() {
        var r = Random(state: 5)
        let count = 37   // past the 8-lane kernels' tail
        let g = r.array(count, scale: 3), u = r.array(count, scale: 3), dout = r.array(count)
        func swiglu(_ g: [Float], _ u: [Float]) -> Double {
            var out = [Float](repeating: 0, count: count)
            Layers.swiglu(&out, g, u, count: count)
            return Self.dot(out, dout)
        }
        var dg = [Float](repeating: 0, count: count), du = dg
        Layers.swigluBackward(dgate: &dg, dup: &du, dout: dout, gate: g, up: u, count: count)
        check("swiglu dgate", g, analytic: dg) { swiglu($0, u) }
        check("swiglu dup", u, analytic: du) { swiglu(g, $0) }
        func gelu(_ x: [Float]) -> Double {
            var out = [Float](repeating: 0, count: count)
            Layers.geluForward(&out, x, count: count)
            return Self.dot(out, dout)
        }
        var dx = [Float](repeating: 0, count: count)
        Layers.geluBackward(dx: &dx, dout: dout, x: g, count: count)
        check("gelu", g, analytic: dx, loss: gelu)
        func geglu(_ g: [Float], _ u: [Float]) -> Double {
            var out = [Float](repeating: 0, count: count)
            Layers.geglu(&out, g, u, count: count)
            return Self.dot(out, dout)
        }
        Layers.gegluBackward(dgate: &dg, dup: &du, dout: dout, gate: g, up: u, count: count)
        check("geglu dgate", g, analytic: dg) { geglu($0, u) }
        check("geglu dup", u, analytic: du) { geglu(g, $0) }
    }

    /// With a window, also with a score scale of its own (Gemma's query_pre_attn_scalar).
    @Test(arguments: [nil, 3] as [Int?]) func attention(_ window: Int?) {
        var r = Random(state: 6)
        let (batch, t, heads, kvHeads, hs) = (2, 5, 4, 2, 4)
        let q = r.array(batch * t * heads * hs), k = r.array(batch * t * kvHeads * hs), v = r.array(batch * t * kvHeads * hs)
        let dout = r.array(batch * t * heads * hs), scale: Float? = window == nil ? nil : 0.7
        func forward(_ q: [Float], _ k: [Float], _ v: [Float]) -> Double {
            var out = [Float](repeating: 0, count: q.count)
            Layers.causalAttentionForward(&out, q: q, k: k, v: v, batch: batch, length: t, heads: heads, kvHeads: kvHeads, headSize: hs,
                                          window: window, scale: scale)
            return Self.dot(out, dout)
        }
        var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = dk
        Layers.causalAttentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: dout, q: q, k: k, v: v, batch: batch, length: t,
                                       heads: heads, kvHeads: kvHeads, headSize: hs, window: window, scale: scale)
        check("attention dq", q, analytic: dq) { forward($0, k, v) }
        check("attention dk", k, analytic: dk) { forward(q, $0, v) }
        check("attention dv", v, analytic: dv) { forward(q, k, $0) }
        if window == nil {   // the BLAS forward against its plain twin
            var fast = [Float](repeating: 0, count: q.count), plain = fast, p = [Float](repeating: 0, count: batch * heads * t * t)
            Layers.causalAttentionForward(&fast, q: q, k: k, v: v, batch: batch, length: t, heads: heads, kvHeads: kvHeads, headSize: hs)
            Layers.causalAttentionForwardReference(&plain, probabilities: &p, q: q, k: k, v: v, batch: batch, length: t,
                                                   heads: heads, kvHeads: kvHeads, headSize: hs)
            #expect(zip(fast, plain).allSatisfy { abs($0 - $1) < 1e-5 })
        }
    }

    @Test func crossEntropy() {
        var r = Random(state: 7)
        let (n, v) = (3, 11)
        let logits = r.array(n * v, scale: 3), targets: [Int32] = [4, -1, 10]
        func loss(_ logits: [Float]) -> Double {
            var copy = logits
            return Layers.crossEntropyBackward(&copy, targets: targets, n: n, vocabulary: v, normalizer: 2).loss / 2
        }
        var d = logits
        let result = Layers.crossEntropyBackward(&d, targets: targets, n: n, vocabulary: v, normalizer: 2)
        #expect(result.count == 2)
        #expect(d[v..<(2 * v)].allSatisfy { $0 == 0 }, "an ignored row has no gradient")
        check("cross-entropy", logits, analytic: d, loss: loss)
    }
}
