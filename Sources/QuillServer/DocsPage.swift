import Foundation
import QuillTokenizers
import Hummingbird
import QuillFormats

/// `GET /docs`: Swagger UI over `/openapi.json`, its script and style served by this binary from
/// a local folder (`--docs-assets`, default `$QUILL_CACHE/swagger-ui`, which scripts/setup fills
/// from PyPI's drf-spectacular-sidecar): the page works with no network.
enum DocsPage {
    static let html = """
    <!DOCTYPE html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <title>Quill API</title>
    <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
    <style>body { margin: 0; font-family: system-ui, "Noto Sans CJK SC", sans-serif } .topbar { display: none }
    .quill-banner { padding: 12px 20px; background: #1b2a3a; color: #fff; font-size: 15px }</style>
    </head>
    <body>
    <div class="quill-banner">Quill: local text generation. 本地文本生成服务 — 原生接口、OpenAI 兼容接口与分词接口。</div>
    <div id="swagger-ui"></div>
    <script src="/docs/assets/swagger-ui-bundle.js"></script>
    <script>
    window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, tryItOutEnabled: true,
                                  defaultModelsExpandDepth: 0 });
    </script>
    </body>
    </html>
    """

    static let assets: [String: String] = ["swagger-ui-bundle.js": "application/javascript", "swagger-ui.css": "text/css"]

    /// The folder the assets come from.
    static func folder(_ configured: String?) -> String {
        configured ?? QuillCache.root.appendingPathComponent("swagger-ui").path
    }

    static func asset(_ name: String, in configured: String?) throws -> Response {
        guard let type = assets[name] else { throw APIError(.notFound, "no docs asset \(name)", code: "not_found") }
        let path = (folder(configured) as NSString).appendingPathComponent(name)
        guard let data = FileContents.data(atPath: path) else {
            throw APIError(.notFound, "\(path) is missing: run scripts/setup, or pass --docs-assets with a folder holding swagger-ui-bundle.js and swagger-ui.css",
                           code: "not_found")
        }
        return Response(status: .ok, headers: [.contentType: type, .cacheControl: "public, max-age=86400"], body: .init(byteBuffer: ByteBuffer(data: data)))
    }
}
