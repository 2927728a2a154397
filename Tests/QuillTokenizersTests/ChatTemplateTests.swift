import Foundation
import Testing
import QuillTokenizers
import QuillFormats

/// Real chat templates (Llama 3.1/3.2, Qwen2/2.5, Gemma 2, Mistral Nemo, Phi-3/3.5, DeepSeek-R1,
/// Granite, Command-R, SmolLM2) rendered identically to Jinja2 with transformers' settings
/// (Fixtures/chat_templates.py); a template's own raise_exception arrives as a JinjaError.
@Suite struct ChatTemplateTests {
    struct Fixture: Decodable {
        struct Case: Decodable { let template: String; let conversation: Int; let add_generation_prompt: Bool; let expected: String?; let error: String? }
        let templates: [String: String]
        let conversations: [[ChatMessage]]
        let cases: [Case]
    }

    static let fixture: Fixture = try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Fixtures.url("chat_templates.json")))

    @Test func rendersLikeJinja2() throws {
        let f = Self.fixture
        var same = 0
        for c in f.cases {
            let template = try ChatTemplate(f.templates[c.template]!)
            do {
                let text = try template.render(f.conversations[c.conversation], addGenerationPrompt: c.add_generation_prompt,
                                               bosToken: "<s>", eosToken: "</s>", variables: ["date_string": .string("29 Nov 2026")],
                                               now: Date(timeIntervalSince1970: 1_795_953_600))   // 2026-11-29 12:00 UTC
                if let expected = c.expected, text == expected { same += 1 }
                else {
                    let wanted = c.expected ?? "error: " + (c.error ?? "")
                    Issue.record("\(c.template) conversation \(c.conversation) generation \(c.add_generation_prompt):\nexpected \(wanted.debugDescription)\ngot      \(text.debugDescription)")
                }
            } catch {
                if let message = c.error, error.raisedByTemplate, error.message == message { same += 1 }
                else { Issue.record("\(c.template) conversation \(c.conversation): \(error)") }
            }
        }
        print("chat templates: \(same)/\(f.cases.count) renderings identical to Jinja2 (\(f.templates.count) templates)")
        #expect(same == f.cases.count)
    }

    @Test func smolLM2UsesItsOwnTemplate() throws {
        let tokenizer = try Tokenizer(ggufPath: try Assets.path("models/SmolLM2-135M-Instruct.Q4_1.gguf"))
        let prompt = try tokenizer.applyChatTemplate([ChatMessage(role: "user", content: "你好")])
        #expect(prompt.hasSuffix("<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n"))
    }

    /// A Gemma vocabulary without a template gets Gemma's turns: as Gemma 2's own template renders
    /// them (its BOS included), and Gemma 3's system turn folded into the first user turn.
    @Test func gemmaTurnsWhereTheFileHasNoTemplate() throws {
        let f = Self.fixture, template = try ChatTemplate(ChatTemplate.gemmaTurns)
        for c in f.cases where c.template == "google-gemma-2-2b-it" && c.expected != nil {
            let text = try template.render(f.conversations[c.conversation], addGenerationPrompt: c.add_generation_prompt, bosToken: "<s>")
            #expect(text == c.expected!, "conversation \(c.conversation)")
        }
        let system = try template.render([ChatMessage(role: "system", content: "Be brief. "), ChatMessage(role: "user", content: "你好"),
                                          ChatMessage(role: "assistant", content: "你好！"), ChatMessage(role: "user", content: "Hi")],
                                         addGenerationPrompt: true)
        #expect(system == "<start_of_turn>user\nBe brief.\n\n你好<end_of_turn>\n<start_of_turn>model\n你好！<end_of_turn>\n"
                + "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n")
        let smolLM2 = try Tokenizer(ggufPath: try Assets.path("models/SmolLM2-135M-Instruct.Q4_1.gguf"))
        #expect(smolLM2.effectiveChatTemplate == smolLM2.chatTemplate)   // a file's own template comes first
    }

    @Test func templateErrorsSayWhere() {
        #expect(throws: JinjaError.self) { try ChatTemplate("{% if x %}no end") }
        #expect(throws: JinjaError.self) { try ChatTemplate("{{ x + }}") }
        do { _ = try ChatTemplate("line one\n{{ 1 | nosuchfilter }}").render([], addGenerationPrompt: true) ; Issue.record("rendered") }
        catch { #expect(error.line == 2 && error.message.contains("nosuchfilter")) }
    }
}
