import Foundation
import QuillTokenizers

extension GenerationOptions {
    /// Defaults a model ships in `generation_config.json` (temperature, top_k, top_p,
    /// repetition_penalty, max_new_tokens, eos_token_id as one id or a list), over Quill's own.
    public init(generationConfig url: URL) throws {
        self.init()
        guard let data = FileContents.data(atPath: url.path) else { return }
        guard let json = try JSONText.object(data) as? [String: Any] else {
            throw ModelError.missingKey(path: url.path, key: "generation_config.json (not a JSON object)")
        }
        func number(_ key: String) -> Double? { (json[key] as? Double) ?? (json[key] as? Int).map(Double.init) }
        if json["do_sample"] as? Bool == false { sampling.temperature = 0 }
        else if let t = number("temperature") { sampling.temperature = Float(t) }
        if let k = json["top_k"] as? Int { sampling.topK = k }
        if let p = number("top_p") { sampling.topP = Float(p) }
        if let p = number("min_p") { sampling.minP = Float(p) }
        if let r = number("repetition_penalty") { sampling.repetitionPenalty = Float(r) }
        if let m = json["max_new_tokens"] as? Int { maxNewTokens = m }
        if let e = json["eos_token_id"] as? Int { stopTokenIds.insert(Int32(e)) }
        if let list = json["eos_token_id"] as? [Int] { stopTokenIds.formUnion(list.map(Int32.init)) }
    }
}
