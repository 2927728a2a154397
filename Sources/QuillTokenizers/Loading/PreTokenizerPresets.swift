/// The pre-tokenizer of each model family, by the name GGUF files give it in
/// `tokenizer.ggml.pre`. The common families use Hugging Face's own patterns (which run as
/// hand-written scanners); the rest use llama.cpp's regex lists, applied one after another.
package enum PreTokenizerPresets {
    package static let gpt2Names: Set = ["default", "gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jais", "jina-es", "jina-de",
                                 "jina-v2-es", "jina-v2-de", "gigachat", "a.x-4.0", "mellum", "modern-bert",
                                 "jina-v1-en", "jina-v2-code", "roberta-bpe", "trillion", "granite-docling", "gpt-neox"]
    package static let digitsThenGPT2Names: Set = ["starcoder", "refact", "command-r", "smollm", "codeshell", "exaone",
                                           "minerva-7b", "mellum2"]
    package static let cl100kNames: Set = ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
                                   "lfm2", "dbrx", "smaug-bpe", "chatglm-bpe", "glm4", "jina-v5-nano", "megrez"]
    package static let qwen2Names: Set = ["qwen2", "deepseek-r1-qwen", "stablelm2", "kormo", "hunyuan", "solar-open", "f2llmv2"]

    static let regexLists: [String: [String]] = [
        // Non-ASCII written as escapes: Swift normalizes literals to NFC, which would turn
        // range ends like U+1F7D into U+03CE.
        "deepseek-llm": [
            "[\r\n]",
            "\\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\u{295}-\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}\u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\u{2126}\u{2128}\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}\u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+",
            "\\s?[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+",
            "\\s+$",
            "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+",
            "\\p{N}+",
        ],
        "deepseek-coder": ["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+", "\\p{N}"],
        "falcon": [
            "[\\p{P}\\$\\+<=>\\^~\\|`]+",
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
            "[0-9][0-9][0-9]",
        ],
        "poro-chat": [" ?[^(\\s|.,!?\u{2026}\u{3002}\u{FF0C}\u{3001}\u{964}\u{6D4}\u{60C})]+"],
        "bloom": [" ?[^(\\s|.,!?\u{2026}\u{3002}\u{FF0C}\u{3001}\u{964}\u{6D4}\u{60C})]+"],
        "gpt3-finnish": [" ?[^(\\s|.,!?\u{2026}\u{3002}\u{FF0C}\u{3001}\u{964}\u{6D4}\u{60C})]+"],
        "viking": [" ?[^(\\s|.,!?\u{2026}\u{3002}\u{FF0C}\u{3001}\u{964}\u{6D4}\u{60C})]+", "\\p{N}"],
        "tekken": [
            "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        ],
        "gpt-4o": [
            "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        ],
        "qwen35": [
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        ],
    ]

    /// Families whose Hugging Face files set `ignore_merges`: a piece that is itself a token is
    /// taken whole, even when the merges would not build it.
    package static let ignoreMergesNames: Set = ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                                                 "midm-2.0", "lfm2", "jina-v5-nano", "minicpm5", "youtu", "glm4", "glm5"]

    package static var supported: [String] {
        (gpt2Names.union(digitsThenGPT2Names).union(cl100kNames).union(qwen2Names).union(regexLists.keys)).sorted()
    }

    /// The pre-tokenizer for a byte-level BPE vocabulary of family `name`, or nil if unknown.
    package static func byteLevel(_ name: String) throws(TokenizerError) -> PreTokenizer? {
        func split(_ pattern: String) throws(TokenizerError) -> PreTokenizer {
            .split(try PatternMatcher(.regex(pattern)), behavior: .isolated, invert: false)
        }
        let bytes = PreTokenizer.byteLevel(addPrefixSpace: false, useRegex: false)
        if gpt2Names.contains(name) { return .byteLevel(addPrefixSpace: false, useRegex: true) }
        if digitsThenGPT2Names.contains(name) {
            return .sequence([.digits(individual: true), .byteLevel(addPrefixSpace: false, useRegex: true)])
        }
        if cl100kNames.contains(name) { return .sequence([try split(WordScanner.cl100kPattern), bytes]) }
        if qwen2Names.contains(name) { return .sequence([try split(WordScanner.qwen2Pattern), bytes]) }
        guard let list = regexLists[name] else { return nil }
        var steps: [PreTokenizer] = []
        for pattern in list { steps.append(try split(pattern)) }
        return .sequence(steps + [bytes])
    }
}
