import Foundation

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}

/// A model's chat template (Jinja, as in `tokenizer_config.json` or GGUF's
/// `tokenizer.chat_template`), rendered the way Hugging Face transformers renders it.
///
/// ```swift
/// let template = try ChatTemplate(tokenizer.chatTemplate ?? ChatTemplate.chatML)
/// let prompt = try template.render([ChatMessage(role: "user", content: "你好")], addGenerationPrompt: true)
/// ```
public struct ChatTemplate: Sendable {
    public let source: String
    nonisolated(unsafe) private let nodes: [JinjaNode]

    /// ChatML, the fallback for models whose files carry no template.
    public static let chatML = """
        {% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
        """

    public init(_ source: String) throws(JinjaError) {
        self.source = source
        nodes = try JinjaParser.parse(source)
    }

    /// Renders `messages`; `variables` adds or overrides template variables (tools, date_string...).
    /// `now` is what `strftime_now()` reports (templates that print today's date).
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String = "",
                       eosToken: String = "", variables: [String: JinjaValue] = [:], now: Date = Date()) throws(JinjaError) -> String {
        var globals: [String: JinjaValue] = [
            "messages": .array(messages.map { .object(JinjaObject([("role", .string($0.role)), ("content", .string($0.content))])) }),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken),
            "eos_token": .string(eosToken),
        ]
        for (k, v) in variables { globals[k] = v }
        return try JinjaInterpreter(globals: globals, now: now).render(nodes)
    }
}

extension Tokenizer {
    /// The prompt for `messages` from the model's own chat template (ChatML when it has none).
    public func applyChatTemplate(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) throws(JinjaError) -> String {
        let template = try ChatTemplate(chatTemplate ?? ChatTemplate.chatML)
        return try template.render(messages, addGenerationPrompt: addGenerationPrompt,
                                   bosToken: bosTokenId.flatMap { token(for: $0) } ?? "",
                                   eosToken: eosTokenId.flatMap { token(for: $0) } ?? "")
    }

    /// The end-of-turn markers of the common chat templates that this vocabulary has
    /// (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`, `<|end|>`): a reply ends there as at EOS.
    public var endOfTurnTokenIds: Set<Int32> {
        Set(["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"].compactMap { id(for: $0) })
    }
}
