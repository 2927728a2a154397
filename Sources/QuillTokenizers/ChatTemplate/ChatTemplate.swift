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

    /// Gemma's turns (`<start_of_turn>user` ... `<end_of_turn>`, the assistant named `model`, a
    /// system message folded into the first user turn), the fallback for Gemma files that carry
    /// no template. It opens with BOS, as Gemma's own templates do.
    public static let gemmaTurns = """
        {{ bos_token }}{% if messages and messages[0]['role'] == 'system' %}{% set system = (messages[0]['content'] | trim) + '\n\n' %}{% set turns = messages[1:] %}{% else %}{% set system = '' %}{% set turns = messages %}{% endif %}{% for message in turns %}{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\n' + (system if loop.first else '') + (message['content'] | trim) + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}
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
    /// The model's own chat template, or, when its files carry none, the turn format its
    /// vocabulary is made for: Gemma's where it has `<start_of_turn>`, ChatML otherwise.
    public var effectiveChatTemplate: String {
        if let chatTemplate { return chatTemplate }
        return id(for: "<start_of_turn>") != nil && id(for: "<end_of_turn>") != nil ? ChatTemplate.gemmaTurns : ChatTemplate.chatML
    }

    /// The prompt for `messages` from `effectiveChatTemplate`, as text; `encodeChat` gives its ids.
    public func applyChatTemplate(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) throws(JinjaError) -> String {
        let template = try ChatTemplate(effectiveChatTemplate)
        return try template.render(messages, addGenerationPrompt: addGenerationPrompt,
                                   bosToken: bosTokenId.flatMap { token(for: $0) } ?? "",
                                   eosToken: eosTokenId.flatMap { token(for: $0) } ?? "")
    }

    /// The token ids of `messages` as a prompt, as transformers' `apply_chat_template(...,
    /// tokenize=True)` gives them: the template writes every special token it wants, BOS
    /// included, and encoding adds none (a template that opens with `{{ bos_token }}` gives one
    /// BOS, not two).
    public func encodeChat(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) throws(JinjaError) -> [Int32] {
        encode(try applyChatTemplate(messages, addGenerationPrompt: addGenerationPrompt), addSpecialTokens: false)
    }

    /// The end-of-turn markers of the common chat templates that this vocabulary has
    /// (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`, `<|end|>`): a reply ends there as at EOS.
    public var endOfTurnTokenIds: Set<Int32> {
        Set(["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"].compactMap { id(for: $0) })
    }
}
