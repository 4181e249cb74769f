//! Reports as one self-contained HTML file: inline CSS, SVG charts drawn here, no scripts, no
//! external assets, so it opens anywhere, prints, and can be filed as it is.
//!
//! The charts are plain SVG written by hand (bars and polylines over labelled axes): a charting
//! crate would bring fonts or a browser runtime for what is a few dozen lines here.

use std::fmt::Write as _;

use super::table::Table;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A report document being written.
pub struct Page {
    body: String,
}

impl Page {
    pub fn new(title: &str, subtitle: &str) -> Page {
        let mut body = String::new();
        let _ = write!(
            body,
            "<header><h1>{}</h1><p class=\"sub\">{}</p></header>",
            escape(title),
            escape(subtitle)
        );
        body.push('\n');
        Page { body }
    }

    pub fn heading(&mut self, text: &str) {
        let _ = writeln!(self.body, "<h2>{}</h2>", escape(text));
    }

    pub fn paragraph(&mut self, text: &str) {
        let _ = writeln!(self.body, "<p>{}</p>", escape(text));
    }

    /// Key figures as a row of tiles.
    pub fn figures(&mut self, items: &[(&str, String)]) {
        self.body.push_str("<div class=\"figures\">");
        for (label, value) in items {
            let _ = write!(
                self.body,
                "<div class=\"fig\"><div class=\"v\">{}</div><div class=\"l\">{}</div></div>",
                escape(value),
                escape(label)
            );
        }
        self.body.push_str("</div>\n");
    }

    pub fn table(&mut self, t: &Table) {
        self.body.push_str("<table><thead><tr>");
        for h in &t.headers {
            let _ = write!(self.body, "<th>{}</th>", escape(h));
        }
        self.body.push_str("</tr></thead><tbody>\n");
        for row in &t.rows {
            self.body.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                let class = if t.right.get(i).copied().unwrap_or(false) {
                    " class=\"n\""
                } else {
                    ""
                };
                let _ = write!(self.body, "<td{class}>{}</td>", escape(cell));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</tbody></table>\n");
    }

    /// A vertical bar chart of labelled values.
    pub fn bars(&mut self, title: &str, unit: &str, data: &[(String, f64)]) {
        self.body.push_str(&bar_chart(title, unit, data));
    }

    /// A line chart over labelled points (in order), with the y range given.
    pub fn line(&mut self, title: &str, data: &[(String, f64)], y_min: f64, y_max: f64) {
        self.body.push_str(&line_chart(title, data, y_min, y_max));
    }

    /// The whole document.
    pub fn finish(self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>callwarden report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{}\
             <footer>callwarden {} · self-contained report: no external resources</footer>\n\
             </body>\n</html>\n",
            self.body,
            env!("CARGO_PKG_VERSION")
        )
    }
}

const STYLE: &str =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;\
max-width:60em;color:#1b1f24;padding:0 1em}h1{margin-bottom:0}.sub{color:#57606a;margin-top:.2em}\
h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.6em}\
table{border-collapse:collapse;width:100%;font-size:.9em;margin:.5em 0}\
th,td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.figures{display:flex;flex-wrap:wrap;gap:.8em;margin:.8em 0}\
.fig{border:1px solid #d0d7de;border-radius:6px;padding:.5em 1em;min-width:8em}\
.fig .v{font-size:1.5em;font-weight:600}.fig .l{color:#57606a;font-size:.85em}\
svg{display:block;margin:.8em 0;max-width:100%;height:auto}svg text{font-size:11px;fill:#1b1f24}\
footer{margin-top:3em;color:#57606a;font-size:.8em}\
@page{size:A4;margin:12mm}\
@media print{body{margin:0;max-width:none;padding:0}h2{break-after:avoid}svg,tr{break-inside:avoid}\
table{font-size:.7em}th,td{padding:.15em .3em;overflow-wrap:anywhere}}";

const W: f64 = 720.0;
const H: f64 = 240.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 56.0;
const TOP: f64 = 28.0;

fn frame(title: &str, y_min: f64, y_max: f64, out: &mut String) {
    let _ = write!(
        out,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" \
         role=\"img\" aria-label=\"{t}\"><title>{t}</title>\
         <text x=\"{LEFT}\" y=\"16\" font-weight=\"600\">{t}</text>",
        t = escape(title)
    );
    // Axes and four grid lines with their values.
    for i in 0..=4 {
        let v = y_min + (y_max - y_min) * i as f64 / 4.0;
        let y = H - BOTTOM - (H - BOTTOM - TOP) * i as f64 / 4.0;
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#d0d7de\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - 8.0,
            LEFT - 6.0,
            y + 4.0,
            short(v)
        );
    }
}

fn short(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        // 2.5, not 2.50.
        let t = format!("{v:.2}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Label `i` of `n` under the x axis at `cx`, slanted; at most about 24 are drawn (the last
/// always).
fn x_label(out: &mut String, i: usize, n: usize, cx: f64, label: &str) {
    let step = n.div_ceil(24).max(1);
    if !(i.is_multiple_of(step) || i + 1 == n) {
        return;
    }
    let y = H - BOTTOM + 14.0;
    let _ = write!(
        out,
        "<text x=\"{cx:.1}\" y=\"{y:.1}\" text-anchor=\"end\" \
         transform=\"rotate(-35 {cx:.1} {y:.1})\">{}</text>",
        escape(label)
    );
}

pub fn bar_chart(title: &str, unit: &str, data: &[(String, f64)]) -> String {
    let mut out = String::new();
    let max = data.iter().map(|d| d.1).fold(0.0f64, f64::max);
    let y_max = if max > 0.0 { nice(max) } else { 1.0 };
    frame(title, 0.0, y_max, &mut out);
    let n = data.len().max(1);
    let slot = (W - LEFT - 8.0) / n as f64;
    let plot_h = H - BOTTOM - TOP;
    for (i, (label, value)) in data.iter().enumerate() {
        let h = plot_h * value / y_max;
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" \
             fill=\"#0969da\"><title>{}: {} {}</title></rect>",
            H - BOTTOM - h,
            slot * 0.7,
            escape(label),
            short(*value),
            escape(unit)
        );
        x_label(&mut out, i, n, LEFT + slot * (i as f64 + 0.5), label);
    }
    out.push_str("</svg>\n");
    out
}

pub fn line_chart(title: &str, data: &[(String, f64)], y_min: f64, y_max: f64) -> String {
    let mut out = String::new();
    frame(title, y_min, y_max, &mut out);
    let n = data.len();
    let plot_h = H - BOTTOM - TOP;
    let span = (y_max - y_min).max(f64::EPSILON);
    let x_of = |i: usize| {
        if n <= 1 {
            LEFT + (W - LEFT - 8.0) / 2.0
        } else {
            LEFT + 8.0 + (W - LEFT - 24.0) * i as f64 / (n - 1) as f64
        }
    };
    let y_of = |v: f64| H - BOTTOM - plot_h * ((v - y_min) / span).clamp(0.0, 1.0);
    let points: Vec<String> = data
        .iter()
        .enumerate()
        .map(|(i, (_, v))| format!("{:.1},{:.1}", x_of(i), y_of(*v)))
        .collect();
    let _ = write!(
        out,
        "<polyline class=\"trend\" fill=\"none\" stroke=\"#0969da\" stroke-width=\"2\" \
         points=\"{}\"/>",
        points.join(" ")
    );
    for (i, (label, v)) in data.iter().enumerate() {
        let _ = write!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#0969da\"><title>{}: {}</title></circle>",
            x_of(i),
            y_of(*v),
            escape(label),
            short(*v)
        );
        x_label(&mut out, i, n, x_of(i), label);
    }
    out.push_str("</svg>\n");
    out
}

/// A round upper bound for an axis: 1, 2 or 5 times a power of ten.
fn nice(max: f64) -> f64 {
    let p = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|&v| v >= max)
        .unwrap_or(10.0 * p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_axes() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(nice(7.0), 10.0);
        assert_eq!(nice(130.0), 200.0);
        assert_eq!(nice(0.3), 0.5);
        assert_eq!(
            (short(2.5), short(7.5), short(0.25), short(40.0)),
            ("2.5".into(), "7.5".into(), "0.25".into(), "40".into())
        );
    }

    #[test]
    fn charts_are_svg_with_their_data() {
        let data = vec![("a".to_string(), 3.0), ("b<".to_string(), 5.0)];
        let bars = bar_chart("Calls", "calls", &data);
        assert!(bars.starts_with("<svg") && bars.trim_end().ends_with("</svg>"));
        assert_eq!(bars.matches("<rect class=\"bar\"").count(), 2);
        assert!(bars.contains("b&lt;: 5 calls"));
        let line = line_chart("Score", &data, 0.0, 100.0);
        assert_eq!(line.matches("<circle").count(), 2);
        assert!(line.contains("<polyline"));
    }
}
