import Foundation
import QuillModels
import QuillTraining
import Testing

/// A model loaded for training sizes its fp32 store from config.json or GGUF metadata; a file whose
/// numbers lie is refused by name before anything is allocated from them (before, a size of 2^40
/// was allocated, and trapped).
@Suite("Loading a model for training") struct TrainableLoadingTests {
    /// The tiny Llama checkpoint with config.json's `key` set to `value`, in a directory of its own.
    func checkpoint(_ key: String, _ value: Int) throws -> URL {
        let source = URL(fileURLWithPath: TrainingFixtures.checkpoint("llama"))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("quill-lying-config-\(getpid())-\(key)")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.copyItem(at: source, to: directory)
        let configURL = directory.appendingPathComponent("config.json")
        var config = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
        config[key] = value
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        return directory
    }

    @Test func sizesThatTheTensorsDoNotHaveAreRefusedBeforeAllocating() throws {
        let directory = try checkpoint("intermediate_size", 1 << 40)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(throws: ModelError.shapeMismatch(path: directory.path, name: "model.layers.0.mlp.gate_proj.weight",
                                                 expected: [1 << 40, 64], found: [128, 64])) {
            try TrainableModel(loading: directory.path)
        }
    }

    @Test func aLayerCountTheFileCannotHoldIsRefused() throws {
        let directory = try checkpoint("num_hidden_layers", 1_000_000_000)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(throws: ModelError.unreadable(path: directory.appendingPathComponent("config.json").path,
                                              reason: "num_hidden_layers says 1000000000 layers, but the model holds only 21 tensors")) {
            try TrainableModel(loading: directory.path)
        }
    }
}
