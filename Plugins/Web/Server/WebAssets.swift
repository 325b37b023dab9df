/// The pages and scripts the web sink serves, compiled into the binary
/// (`embedInCode`), so camflow works offline and needs no files next to it.
enum WebAssets {
    struct Asset {
        let bytes: [UInt8]
        let contentType: String
    }

    static let viewer = PackageResources.viewer_html
    static let dashboard = PackageResources.dashboard_html
    static let recordings = PackageResources.recordings_html

    /// Served under `/assets/NAME`.
    static let files: [String: Asset] = [
        "camflow-player.js": Asset(bytes: PackageResources.camflow_player_js, contentType: "text/javascript; charset=utf-8"),
        "viewer.js": Asset(bytes: PackageResources.viewer_js, contentType: "text/javascript; charset=utf-8"),
        "dashboard.js": Asset(bytes: PackageResources.dashboard_js, contentType: "text/javascript; charset=utf-8"),
        "recordings.js": Asset(bytes: PackageResources.recordings_js, contentType: "text/javascript; charset=utf-8"),
        "camflow.css": Asset(bytes: PackageResources.camflow_css, contentType: "text/css; charset=utf-8"),
    ]
}
