import Foundation

/// How Cohort prints numbers and durations for people.
public enum Format {
    /// Four significant digits, as the reference report prints its figures; "n/a" for NaN.
    public static func figure(_ v: Double) -> String {
        guard v.isFinite else { return "n/a" }
        return String(format: "%.4g", v)
    }

    /// `42s`, `3m07s`, `2h05m`; "?" for a duration not known yet.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
        if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return "\(s)s"
    }
}

/// A line on standard output, written at once: a sweep's children write to the same
/// output, and buffered lines would come out of order (or late, when piped to a file).
public func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// A line on standard error, written at once.
public func sayError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
