//! The startup timeline as a standalone SVG image: one row per service, a thin bar while it
//! starts (launch → running) and a thick one until it is healthy, restarts marked, the critical
//! path in red, failed services hatched grey, and a time axis in seconds. Readable at a glance,
//! written by hand (no dependency), every element with a `<title>` tooltip.

use std::fmt::Write as _;

use crate::report::Report;

/// Least room for the service names left of the plot.
const LABEL_WIDTH: f64 = 170.0;
const PLOT_WIDTH: f64 = 760.0;
/// Least room right of the plot (a label after the last bar needs more, and gets it).
const RIGHT_MARGIN: f64 = 30.0;
const ROW: f64 = 24.0;
const TOP: f64 = 64.0;
const BOTTOM: f64 = 64.0;

/// Escapes text for SVG content and attributes.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// About how wide `text` is drawn at `size` px in a sans-serif font, erring wide (common sans-serif
/// fonts average well under 0.66 em a character), so the image is made wide enough for every
/// label instead of cutting the last one off.
fn text_width(text: &str, size: f64, bold: bool) -> f64 {
    let em = if bold { 0.72 } else { 0.66 };
    text.chars().count() as f64 * size * em
}

/// What follows a service's bar: when it was ready (or failed), and its restarts.
fn end_label(s: &crate::report::ServiceReport) -> Option<(f64, String)> {
    // A service never launched has no bar to follow.
    let end = s
        .launched_s
        .and(s.ready_s.or(s.completed_s).or(s.failed_s))?;
    let failed = s.ready_s.is_none() && s.completed_s.is_none();
    let mut label = if failed {
        format!("failed at {end:.2}s")
    } else {
        format!("{end:.2}s")
    };
    if s.restarts > 0 {
        label.push_str(&format!(" ↻{}", s.restarts));
    }
    Some((end, label))
}

/// A tick step (1, 2 or 5 times a power of ten) giving at most about ten ticks over `span`.
fn tick_step(span: f64) -> f64 {
    let raw = (span / 10.0).max(0.001);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * power)
}

/// Renders the report's timeline.
pub fn render(report: &Report) -> String {
    let span = report
        .services
        .iter()
        .filter_map(|s| s.ready_s.or(s.completed_s).or(s.failed_s).or(s.started_s))
        .fold(report.total_s, f64::max)
        .max(0.1);
    let label_width = report
        .services
        .iter()
        .map(|s| 16.0 + text_width(&s.name, 12.0, s.critical))
        .fold(LABEL_WIDTH, f64::max);
    let x = |t: f64| label_width + t / span * PLOT_WIDTH;
    let rows = report.services.len() as f64;
    let height = TOP + rows * ROW + BOTTOM;
    let title = format!(
        "vigil up: {} in {:.2}s ({} schedule)",
        report.outcome, report.total_s, report.schedule
    );
    let comparison = report.comparison();
    let width = report
        .services
        .iter()
        .filter_map(end_label)
        .map(|(end, label)| x(end) + 4.0 + text_width(&label, 12.0, false) + 10.0)
        .chain([
            label_width + PLOT_WIDTH + RIGHT_MARGIN,
            20.0 + text_width(&title, 15.0, true),
            20.0 + text_width(&comparison, 12.0, false),
        ])
        .fold(0.0, f64::max)
        .ceil();
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>
<text x="10" y="20" font-size="15" font-weight="bold">{}</text>
<text x="10" y="40" fill="#444">{}</text>"##,
        escape(&title),
        escape(&comparison)
    );

    // Grid and axis.
    let step = tick_step(span);
    let axis_y = TOP + rows * ROW + 6.0;
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let tx = x(t);
        let _ = writeln!(
            svg,
            r##"<line x1="{tx:.1}" y1="{TOP}" x2="{tx:.1}" y2="{axis_y}" stroke="#e4e4e4"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#444">{}</text>"##,
            axis_y + 16.0,
            format_tick(t, step)
        );
        t += step;
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{label_width:.1}" y1="{axis_y}" x2="{:.1}" y2="{axis_y}" stroke="#888"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444">seconds since vigil up</text>"##,
        x(span),
        x(span / 2.0),
        axis_y + 34.0
    );
    if report.total_s > 0.0 {
        let tx = x(report.total_s);
        let _ = writeln!(
            svg,
            r##"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{axis_y}" stroke="#333" stroke-dasharray="4 3"><title>all settled at {:.2}s</title></line>"##,
            TOP - 6.0,
            report.total_s
        );
    }

    for (row, s) in report.services.iter().enumerate() {
        let y = TOP + row as f64 * ROW;
        let mid = y + ROW / 2.0;
        let (color, weight) = if s.critical {
            ("#d62728", "bold")
        } else {
            ("#1f77b4", "normal")
        };
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-weight="{weight}">{}</text>"##,
            label_width - 8.0,
            mid + 4.0,
            escape(&s.name)
        );
        let Some(launched) = s.launched_s else {
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" fill="#888">never started</text>"##,
                label_width + 4.0,
                mid + 4.0
            );
            continue;
        };
        let started = s.started_s.unwrap_or(launched);
        let tooltip = escape(&format!(
            "{}: launched {:.2}s, running {:.2}s, {}; {} attempt(s){}",
            s.name,
            launched,
            started,
            s.ready_s
                .map_or_else(|| s.state.clone(), |r| format!("ready {r:.2}s")),
            s.attempts,
            s.failure
                .as_ref()
                .map_or_else(String::new, |f| format!("; failed: {f}"))
        ));
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="4" fill="{color}" opacity="0.5"><title>{tooltip}</title></rect>"##,
            x(launched),
            mid - 2.0,
            (x(started) - x(launched)).max(1.0)
        );
        if let Some((end, label)) = end_label(s) {
            let failed = s.ready_s.is_none() && s.completed_s.is_none();
            let fill = if failed { "#999999" } else { color };
            let _ = writeln!(
                svg,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="14" rx="2" fill="{fill}"><title>{tooltip}</title></rect>"##,
                x(started),
                mid - 7.0,
                (x(end) - x(started)).max(2.0)
            );
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" fill="#333">{}</text>"##,
                x(end) + 4.0,
                mid + 4.0,
                escape(&label)
            );
        }
    }

    let legend_y = height - 12.0;
    let _ = writeln!(
        svg,
        r##"<rect x="{label_width:.1}" y="{:.1}" width="14" height="10" fill="#1f77b4"/><text x="{:.1}" y="{legend_y:.1}">running → healthy</text>
<rect x="{:.1}" y="{:.1}" width="14" height="10" fill="#d62728"/><text x="{:.1}" y="{legend_y:.1}">critical path</text>
<rect x="{:.1}" y="{:.1}" width="14" height="10" fill="#999999"/><text x="{:.1}" y="{legend_y:.1}">failed</text>
<text x="{:.1}" y="{legend_y:.1}">↻ restarts</text>"##,
        legend_y - 9.0,
        label_width + 18.0,
        label_width + 150.0,
        legend_y - 9.0,
        label_width + 168.0,
        label_width + 270.0,
        legend_y - 9.0,
        label_width + 288.0,
        label_width + 350.0,
    );
    svg.push_str("</svg>\n");
    svg
}

fn format_tick(t: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{t:.0}")
    } else if step >= 0.1 {
        format!("{t:.1}")
    } else {
        format!("{t:.2}")
    }
}
