//! The time waterfall printed beside the tree: each transaction and span as a bar placed by its
//! start and duration within the trace, as in Sentry's trace view; error events and logs as a
//! mark at their time.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::time::{Duration, SystemTime};

use super::tree::{LogLine, Node, NodeKind, Trace};

/// Width used when `COLUMNS` is unset or not a number.
const DEFAULT_WIDTH: usize = 120;
/// Narrowest layout: below it, lines are too short to read anyway.
const MIN_WIDTH: usize = 40;

const BAR: char = '█';
const MARK: char = '•';

/// How a [`Trace`] is laid out: the total line width and whether to colour the bars.
///
/// The tree takes the left part of each line (cut with `…` when too long), the waterfall the right
/// third (10 to 60 columns), between `│` rails, under a header giving the trace's total duration.
///
/// ```
/// use traced_spawn::console::Layout;
///
/// let reporter = traced_spawn::console::init();
/// sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task")).finish();
/// let text = reporter.traces()[0].render(&Layout::new(60, false));
/// assert!(text.lines().all(|line| line.chars().count() <= 60));
/// assert!(!text.contains('\x1b')); // no colour
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Total width of a line, in columns (at least 40).
    pub width: usize,
    /// Whether bars and levels are coloured with ANSI escape codes.
    pub color: bool,
}

impl Layout {
    /// A layout `width` columns wide (40 at least), coloured or not.
    ///
    /// ```
    /// let layout = traced_spawn::console::Layout::new(10, true);
    /// assert_eq!((layout.width, layout.color), (40, true));
    /// ```
    pub fn new(width: usize, color: bool) -> Layout {
        Layout {
            width: width.max(MIN_WIDTH),
            color,
        }
    }

    /// The layout for stdout: `COLUMNS` wide (120 when unset), coloured only when stdout is a
    /// terminal and `NO_COLOR` is unset or empty (<https://no-color.org>).
    ///
    /// ```
    /// // Under `cargo test`, stdout is captured: never coloured.
    /// let layout = traced_spawn::console::Layout::from_env();
    /// assert!(!layout.color);
    /// ```
    pub fn from_env() -> Layout {
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|columns| columns.trim().parse().ok())
            .unwrap_or(DEFAULT_WIDTH);
        let color = wants_color(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        );
        Layout::new(width, color)
    }

    /// Columns of the waterfall, between its rails.
    pub(crate) fn bar_width(&self) -> usize {
        (self.width / 3).clamp(10, 60)
    }

    /// Columns of the tree: what is left of the line.
    fn tree_width(&self) -> usize {
        // `tree` + ` │` + bars + `│`
        self.width - self.bar_width() - 3
    }

    pub(crate) fn render(&self, trace: &Trace) -> String {
        let span = Span::of(trace);
        let bar_width = self.bar_width();
        let tree_width = self.tree_width();
        let mut out = String::new();

        let title = format!("trace {}", trace.trace_id);
        let scale = format!("0 … {}", format_ms(span.total_ms()));
        let _ = writeln!(
            out,
            "{}  {:>width$}",
            fit(&title, tree_width),
            scale,
            width = bar_width + 1
        );

        let mut rows = Vec::new();
        for (i, root) in trace.roots.iter().enumerate() {
            tree_rows(root, "", i + 1 == trace.roots.len(), &mut rows);
        }
        for ((text, details), node) in rows {
            // Details first give way to a narrow line, then the end of the text.
            let mut text = text;
            if text.chars().count() + details.chars().count() <= tree_width {
                text.push_str(&details);
            }
            let cells = match node.kind {
                NodeKind::Error => mark(span.offset(node.start), span.total, bar_width),
                _ => bar(
                    span.offset(node.start),
                    node.end().duration_since(node.start).unwrap_or_default(),
                    span.total,
                    bar_width,
                ),
            };
            let style = match node.kind {
                _ if is_failure(node) => Style::Red,
                NodeKind::Transaction => Style::Blue,
                NodeKind::Span => Style::Cyan,
                NodeKind::Error => Style::Red,
            };
            let _ = writeln!(
                out,
                "{} │{}│",
                fit(&text, tree_width),
                self.paint(&cells, style)
            );
        }

        if !trace.logs.is_empty() {
            let _ = writeln!(
                out,
                "{} │{}│",
                fit("logs", tree_width),
                " ".repeat(bar_width)
            );
            for log in &trace.logs {
                let at = span.offset(log.timestamp).as_secs_f64() * 1000.0;
                let offset = format!("+{}", format_ms(at));
                let text = format!("  {offset:>10}  {:<5}  {}", log.level, log.body);
                let cells = mark(span.offset(log.timestamp), span.total, bar_width);
                let _ = writeln!(
                    out,
                    "{} │{}│",
                    fit(&text, tree_width),
                    self.paint(&cells, level_style(log))
                );
            }
        }
        out
    }

    fn paint(&self, text: &str, style: Style) -> String {
        if !self.color {
            return text.to_owned();
        }
        let code = match style {
            Style::Blue => "34",
            Style::Cyan => "36",
            Style::Red => "31",
            Style::Yellow => "33",
            Style::Dim => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

/// Colour on a terminal only, and never when `NO_COLOR` is set to a non-empty value.
fn wants_color(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

#[derive(Clone, Copy)]
enum Style {
    Blue,
    Cyan,
    Red,
    Yellow,
    Dim,
}

fn is_failure(node: &Node) -> bool {
    node.status
        .is_some_and(|status| !matches!(status, sentry::protocol::SpanStatus::Ok))
}

fn level_style(log: &LogLine) -> Style {
    match log.level.as_str() {
        "error" | "fatal" => Style::Red,
        "warn" => Style::Yellow,
        _ => Style::Dim,
    }
}

/// The time the trace covers: from its first start to its last end.
struct Span {
    start: SystemTime,
    total: Duration,
}

impl Span {
    fn of(trace: &Trace) -> Span {
        let nodes = trace.nodes();
        let starts = nodes
            .map(|node| node.start)
            .chain(trace.logs.iter().map(|log| log.timestamp));
        let start = starts.min().unwrap_or(SystemTime::UNIX_EPOCH);
        let end = trace
            .nodes()
            .map(Node::end)
            .chain(trace.logs.iter().map(|log| log.timestamp))
            .max()
            .unwrap_or(start);
        Span {
            start,
            total: end.duration_since(start).unwrap_or_default(),
        }
    }

    fn offset(&self, at: SystemTime) -> Duration {
        at.duration_since(self.start).unwrap_or_default()
    }

    fn total_ms(&self) -> f64 {
        self.total.as_secs_f64() * 1000.0
    }
}

/// The `width` cells of a bar that starts `offset` into a trace `total` long and lasts
/// `duration`: at least one cell, never past the end.
pub(crate) fn bar(offset: Duration, duration: Duration, total: Duration, width: usize) -> String {
    let (column, length) = bar_cells(offset, duration, total, width);
    cells(width, column, length, BAR)
}

/// Where a bar starts (column) and how many cells it fills, out of `width`.
pub(crate) fn bar_cells(
    offset: Duration,
    duration: Duration,
    total: Duration,
    width: usize,
) -> (usize, usize) {
    if width == 0 {
        return (0, 0);
    }
    if total.is_zero() {
        return (0, width);
    }
    let scale = width as f64 / total.as_secs_f64();
    let start = offset.as_secs_f64() * scale;
    let end = (offset + duration).as_secs_f64() * scale;
    let column = (start.floor() as usize).min(width - 1);
    let last = (end.ceil() as usize).clamp(column + 1, width);
    (column, last - column)
}

/// A one-cell mark at `offset` into a trace `total` long.
fn mark(offset: Duration, total: Duration, width: usize) -> String {
    let (column, _) = bar_cells(offset, Duration::ZERO, total, width);
    cells(width, column, 1, MARK)
}

fn cells(width: usize, column: usize, length: usize, fill: char) -> String {
    (0..width)
        .map(|i| {
            if i >= column && i < column + length {
                fill
            } else {
                ' '
            }
        })
        .collect()
}

/// Pads or cuts `text` to exactly `width` columns (one per char), ending a cut text with `…`.
pub(crate) fn fit(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        let mut padded = text.to_owned();
        padded.extend(std::iter::repeat_n(' ', width - count));
        padded
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn format_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.1} ms")
    }
}

/// A row of the tree: its text with the branch prefix, its details, and its node.
type Row<'a> = ((String, String), &'a Node);

/// The rows of the tree under (and including) `node`.
fn tree_rows<'a>(node: &'a Node, prefix: &str, last: bool, rows: &mut Vec<Row<'a>>) {
    let branch = if last { "└─ " } else { "├─ " };
    let (text, details) = node.line();
    rows.push(((format!("{prefix}{branch}{text}"), details), node));
    let prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
    for (i, child) in node.children.iter().enumerate() {
        tree_rows(child, &prefix, i + 1 == node.children.len(), rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentry::protocol::{SpanId, SpanStatus};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn node(kind: NodeKind, start_ms: u64, duration_ms: Option<f64>) -> Node {
        Node {
            kind,
            span_id: SpanId::default(),
            parent_span_id: None,
            op: "op".into(),
            name: "name".into(),
            start: SystemTime::UNIX_EPOCH + ms(1_000_000 + start_ms),
            duration_ms,
            status: Some(SpanStatus::Ok),
            origin: None,
            thread_name: None,
            queue_delay_ms: None,
            children: Vec::new(),
        }
    }

    /// A request 0..100 ms with a continuation 50..150 ms and, under it, a span 60..110 ms.
    fn trace() -> Trace {
        let mut span = node(NodeKind::Span, 60, Some(50.0));
        span.name = "generate".into();
        let mut continuation = node(NodeKind::Transaction, 50, Some(100.0));
        continuation.name = "continuation".into();
        continuation.children.push(span);
        let mut request = node(NodeKind::Transaction, 0, Some(100.0));
        request.name = "request".into();
        request.children.push(continuation);
        Trace {
            trace_id: "0123456789abcdef0123456789abcdef".parse().unwrap(),
            roots: vec![request],
            logs: vec![LogLine {
                level: "info".into(),
                body: "half way".into(),
                timestamp: SystemTime::UNIX_EPOCH + ms(1_000_075),
                span_id: None,
            }],
        }
    }

    #[test]
    fn bars_are_placed_by_start_and_duration() {
        // 150 ms over 30 cells: 5 ms a cell.
        assert_eq!(bar_cells(ms(0), ms(100), ms(150), 30), (0, 20));
        assert_eq!(bar_cells(ms(50), ms(100), ms(150), 30), (10, 20));
        assert_eq!(bar_cells(ms(60), ms(50), ms(150), 30), (12, 10));
        // Shorter than a cell: still one cell; at the very end: the last cell.
        assert_eq!(bar_cells(ms(70), Duration::ZERO, ms(150), 30), (14, 1));
        assert_eq!(bar_cells(ms(150), Duration::ZERO, ms(150), 30), (29, 1));
        // A trace with no duration: every bar is the whole width.
        assert_eq!(bar_cells(ms(0), ms(0), Duration::ZERO, 30), (0, 30));
        assert_eq!(bar(ms(50), ms(50), ms(100), 4), "  ██");
    }

    #[test]
    fn rendered_rows_put_each_bar_at_its_time() {
        // Width 90: bars 30 columns wide, the tree 57.
        let layout = Layout::new(90, false);
        assert_eq!(layout.bar_width(), 30);
        let text = layout.render(&trace());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert!(lines[0].starts_with("trace "), "{text}");
        assert!(lines[0].ends_with("0 … 150.0 ms"), "{text}");
        let bars: Vec<&str> = lines[1..4]
            .iter()
            .map(|line| line.split('│').nth_back(1).unwrap())
            .collect();
        assert_eq!(bars[0], format!("{}{}", "█".repeat(20), " ".repeat(10)));
        assert_eq!(bars[1], format!("{}{}", " ".repeat(10), "█".repeat(20)));
        assert_eq!(
            bars[2],
            format!("{}{}{}", " ".repeat(12), "█".repeat(10), " ".repeat(8))
        );
        assert!(lines[1].starts_with("└─ tx   op  request  100.0 ms  ok"));
        assert!(lines[3].starts_with("      └─ span op  generate  50.0 ms  ok"));
        // The log, 75 ms in: a mark in cell 15.
        assert_eq!(lines[4].split('│').next().unwrap().trim_end(), "logs");
        assert!(
            lines[5].starts_with("    +75.0 ms  info   half way"),
            "{text}"
        );
        let log_bar = lines[5].split('│').nth_back(1).unwrap();
        assert_eq!(log_bar.chars().position(|c| c == MARK), Some(15));
        // Every line is exactly the width.
        for line in &lines[1..] {
            assert_eq!(line.chars().count(), 90, "{line:?}");
        }
    }

    #[test]
    fn long_lines_are_cut_to_the_width() {
        let mut trace = trace();
        trace.roots[0].name = "x".repeat(300);
        for width in [40, 80, 200] {
            let text = Layout::new(width, false).render(&trace);
            for line in text.lines().skip(1) {
                assert_eq!(line.chars().count(), width, "{line:?}");
            }
            assert!(text.contains("x…"), "{text}");
        }
        // Narrower than the minimum: laid out at the minimum.
        assert_eq!(Layout::new(3, false).width, MIN_WIDTH);
    }

    #[test]
    fn details_give_way_before_the_text_is_cut() {
        let mut trace = trace();
        trace.roots[0].thread_name = Some("worker".into());
        trace.roots[0].queue_delay_ms = Some(0.3);
        let wide = Layout::new(150, false).render(&trace);
        assert!(
            wide.contains("request  100.0 ms  ok  thread.name=worker  queued 0.3 ms "),
            "{wide}"
        );
        // Width 90: 57 columns of tree, too few for the details; the rest stays whole.
        let narrow = Layout::new(90, false).render(&trace);
        let line = narrow.lines().nth(1).unwrap();
        assert!(
            line.starts_with("└─ tx   op  request  100.0 ms  ok  "),
            "{narrow}"
        );
        assert!(!line.contains("thread.name"), "{narrow}");
    }

    #[test]
    fn colour_only_when_asked() {
        let plain = Layout::new(90, false).render(&trace());
        assert!(!plain.contains('\x1b'));
        let coloured = Layout::new(90, true).render(&trace());
        assert!(coloured.contains("\x1b[34m"), "{coloured}"); // transactions blue
        assert!(coloured.contains("\x1b[36m"), "{coloured}"); // spans cyan
                                                              // Without the escape codes, the same text.
        let stripped = coloured
            .replace("\x1b[34m", "")
            .replace("\x1b[36m", "")
            .replace("\x1b[2m", "")
            .replace("\x1b[0m", "");
        assert_eq!(stripped, plain);
    }

    #[test]
    fn colour_needs_a_terminal_and_no_no_color() {
        use std::ffi::OsStr;
        assert!(wants_color(true, None));
        assert!(wants_color(true, Some(OsStr::new(""))));
        assert!(!wants_color(true, Some(OsStr::new("1"))));
        assert!(!wants_color(false, None));
    }

    #[test]
    fn no_color_and_columns_are_honoured() {
        // The only test of this binary that touches these variables.
        std::env::set_var("NO_COLOR", "1");
        std::env::set_var("COLUMNS", "77");
        let layout = Layout::from_env();
        assert_eq!(layout, Layout::new(77, false));
        std::env::set_var("COLUMNS", "not a number");
        assert_eq!(Layout::from_env().width, DEFAULT_WIDTH);
        std::env::remove_var("COLUMNS");
        std::env::remove_var("NO_COLOR");
    }
}
