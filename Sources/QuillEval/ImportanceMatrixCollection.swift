import QuillFormats
import QuillModels

extension Perplexity {
    /// An importance matrix by llama-imatrix's protocol, which is llama-perplexity's: the text's
    /// tokens cut into chunks of `context` (at most `maxChunks`), each run from an empty cache with
    /// its first token replaced by BOS where the tokenizer adds one; every token's input to every
    /// weight product of the blocks is summed, squared, per column (the output head is not, as
    /// llama-imatrix leaves it out by default). `datasets` name the calibration text in the file;
    /// `progress(done, total)` follows the chunks.
    public func importanceMatrix(_ model: any LanguageModel, tokens: [Int32], bos: Int32?, datasets: [String],
                                 progress: (_ chunk: Int, _ of: Int) -> Void = { _, _ in }) throws -> ImportanceMatrix {
        guard context >= 4, context <= model.contextLength else {
            throw Failure.contextTooLong(context: context, model: model.contextLength)
        }
        guard tokens.count >= context else { throw Failure.shorterThanAChunk(tokens: tokens.count, context: context) }
        var matrix = ImportanceMatrix(datasets: datasets, chunkSize: context)
        let total = chunks(of: tokens.count)
        for chunk in 0..<total {
            var input = Array(tokens[(chunk * context)..<((chunk + 1) * context)])
            if let bos { input[0] = bos }
            var cache = model.makeCache(capacity: context)
            try model.observeProductInputs(input, cache: &cache) { weight, x, rows, columns in
                matrix.accumulate(weight, x, rows: rows, columns: columns)
            }
            matrix.chunkCount = chunk + 1
            progress(chunk + 1, total)
        }
        return matrix
    }
}
