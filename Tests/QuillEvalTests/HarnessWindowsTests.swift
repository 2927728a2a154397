import Foundation
import Testing
@testable import QuillEval

/// lm-evaluation-harness's own example in `loglikelihood_rolling`'s docstring, and its rules.
struct HarnessWindowsTests {
    @Test func rollingWindowsAsTheHarnessDocumentsThem() {
        // tokens 0…9, prefix BOS (=100), max length 4: inputs BOS 0 1 2 | 3 4 5 6 | 5 6 7 8 (pred 4..7, then 8, 9)
        let windows = HarnessWindows.rolling(Array(0..<10), prefix: 100, length: 4)
        #expect(windows.map(\.input) == [[100, 0, 1, 2], [3, 4, 5, 6], [5, 6, 7, 8]])
        #expect(windows.map(\.targets) == [[0, 1, 2, 3], [4, 5, 6, 7], [-1, -1, 8, 9]])
        // every token scored once
        #expect(windows.flatMap(\.targets).filter { $0 >= 0 } == Array(0..<10))
    }

    @Test func shortDocumentIsOneWindow() {
        let windows = HarnessWindows.rolling([7, 8], prefix: 1, length: 16)
        #expect(windows == [ScoringWindow(input: [1, 7], targets: [7, 8])])
    }

    @Test func continuationWindowCutsFromTheLeft() {
        let w = ScoringWindow(context: [1, 2, 3, 4], continuation: [5, 6], length: 4)
        #expect(w.input == [2, 3, 4, 5])
        #expect(w.targets == [-1, -1, 5, 6])
    }

    @Test func pythonWordsAndSpaces() {
        #expect(PythonText.wordCount("a b  c") == 3)
        #expect(PythonText.wordCount(" a\u{3000}b ") == 4)   // leading and trailing runs add empty words, as re.split does
        #expect(PythonText.wordCount("床前明月光") == 1)
        #expect(PythonText.length("床前") == 2)
    }
}
