//! Charts drawn on the server as inline SVG: no script, no library. Pure functions from
//! figures to markup; every text put in the markup is escaped, numbers are written in
//! the page's language, and each chart names itself (`title`, `desc`) for assistive
//! technology. The page beside each chart has the same figures as a table.
//!
//! Charts are laid out left to right in every language (a time axis runs left to right
//! in Arabic too): the SVG carries `direction="ltr"` and the stylesheet's `.chart` rule.
//! Colours are classes of the stylesheet, not inline styles, which the pages' content
//! security policy would refuse.

use std::fmt::Write;

use chrono::NaiveDate;

use super::i18n::Tr;

/// Escapes text for SVG (XML) content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// An id usable in markup: letters, digits, `-` and `_`, other characters dropped.
fn id_of(id: &str) -> String {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    if id.is_empty() {
        "chart".into()
    } else {
        id
    }
}

/// A coordinate, language-independent.
fn at(value: f64) -> String {
    format!("{value:.1}")
}

/// A label shortened to `max` characters with an ellipsis (its full text stays in the
/// row's tooltip and in the table).
fn shortened(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}

fn open_svg(out: &mut String, id: &str, width: f64, height: f64, title: &str, desc: &str) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"{id}\" \
         viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" direction=\"ltr\" role=\"img\" \
         aria-labelledby=\"{id}-title {id}-desc\">\
         <title id=\"{id}-title\">{title}</title><desc id=\"{id}-desc\">{desc}</desc>",
        w = at(width),
        h = at(height),
        title = escape(title),
        desc = escape(desc),
    );
}

/// One series of a stacked bar chart: its name and its stylesheet class.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub class: &'static str,
}

/// One bar: its label and a value per series.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub values: Vec<i64>,
}

/// A chart's name and the sentence that sums it up.
#[derive(Debug, Clone)]
pub struct Caption<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub desc: &'a str,
}

const BAR_WIDTH: f64 = 640.0;
const LABEL_WIDTH: f64 = 230.0;
const BAR_HEIGHT: f64 = 22.0;
const BAR_GAP: f64 = 12.0;
const LEGEND_HEIGHT: f64 = 34.0;

/// Horizontal bars, each split into its series' shares of the bar's total (100%
/// stacked): a legend on top, the labels at the start, one tooltip per segment.
pub fn stacked_bars(tr: &Tr, caption: &Caption<'_>, series: &[Series], bars: &[Bar]) -> String {
    let id = id_of(caption.id);
    let height = LEGEND_HEIGHT + bars.len() as f64 * (BAR_HEIGHT + BAR_GAP) + 4.0;
    let mut out = String::new();
    open_svg(
        &mut out,
        &id,
        BAR_WIDTH,
        height,
        caption.title,
        caption.desc,
    );
    // The legend.
    let mut x = LABEL_WIDTH;
    for s in series {
        let _ = write!(
            out,
            "<rect class=\"{class}\" x=\"{x}\" y=\"8\" width=\"14\" height=\"14\"/>\
             <text class=\"chart-text\" x=\"{tx}\" y=\"20\" font-size=\"13\">{name}</text>",
            class = s.class,
            x = at(x),
            tx = at(x + 19.0),
            name = escape(&s.name),
        );
        x += 24.0 + 8.0 * s.name.chars().count() as f64;
    }
    let track = BAR_WIDTH - LABEL_WIDTH - 8.0;
    for (row, bar) in bars.iter().enumerate() {
        let y = LEGEND_HEIGHT + row as f64 * (BAR_HEIGHT + BAR_GAP);
        let total: i64 = bar.values.iter().map(|v| (*v).max(0)).sum();
        let _ = write!(
            out,
            "<g><title>{full}</title><text class=\"chart-text\" x=\"{lx}\" y=\"{ly}\" \
             font-size=\"13\" text-anchor=\"end\">{label}</text>",
            full = escape(&bar.label),
            lx = at(LABEL_WIDTH - 8.0),
            ly = at(y + BAR_HEIGHT * 0.7),
            label = escape(&shortened(&bar.label, 30)),
        );
        let _ = write!(
            out,
            "<rect class=\"chart-track\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\"/>",
            x = at(LABEL_WIDTH),
            y = at(y),
            w = at(track),
            h = at(BAR_HEIGHT),
        );
        let mut start = LABEL_WIDTH;
        for (s, value) in series.iter().zip(&bar.values) {
            let value = (*value).max(0);
            if total == 0 || value == 0 {
                continue;
            }
            let width = track * value as f64 / total as f64;
            let share = tr.decimal(100.0 * value as f64 / total as f64, 1);
            let tip = tr.with(
                "chart-segment",
                &[
                    ("series", s.name.clone()),
                    ("count", tr.int(value)),
                    ("share", share),
                ],
            );
            let _ = write!(
                out,
                "<rect class=\"{class}\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\">\
                 <title>{tip}</title></rect>",
                class = s.class,
                x = at(start),
                y = at(y),
                w = at(width),
                h = at(BAR_HEIGHT),
                tip = escape(&tip),
            );
            start += width;
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

/// One period of an NPS trend, as the survey report gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct NpsPoint {
    /// The period's first day.
    pub period: NaiveDate,
    /// Answers in the period.
    pub n: i64,
    /// `None` without answers.
    pub score: Option<f64>,
    /// The 95% margin of error, in NPS points.
    pub margin: Option<f64>,
}

const LINE_WIDTH: f64 = 640.0;
const LINE_HEIGHT: f64 = 300.0;
const PLOT_LEFT: f64 = 56.0;
const PLOT_RIGHT: f64 = 620.0;
const PLOT_TOP: f64 = 16.0;
const PLOT_BOTTOM: f64 = 236.0;
/// Period labels shown at most; the table lists every period.
const MAX_X_LABELS: usize = 8;

fn y_of(score: f64) -> f64 {
    let clamped = score.clamp(-100.0, 100.0);
    PLOT_TOP + (100.0 - clamped) / 200.0 * (PLOT_BOTTOM - PLOT_TOP)
}

/// Where each period lies on the time axis: by its date, so a gap of weeks without
/// answers is a gap on the chart.
fn x_positions(points: &[NpsPoint]) -> Vec<f64> {
    let (Some(first), Some(last)) = (
        points.iter().map(|p| p.period).min(),
        points.iter().map(|p| p.period).max(),
    ) else {
        return Vec::new();
    };
    let span = (last - first).num_days();
    points
        .iter()
        .map(|p| {
            if span == 0 {
                (PLOT_LEFT + PLOT_RIGHT) / 2.0
            } else {
                let offset = (p.period - first).num_days() as f64 / span as f64;
                PLOT_LEFT + 12.0 + offset * (PLOT_RIGHT - PLOT_LEFT - 24.0)
            }
        })
        .collect()
}

/// The NPS over time: a line through each period's score, the 95% margin of error as a
/// shaded band around it, the −100…100 scale, and under each period its date and its
/// number of answers.
pub fn nps_trend(tr: &Tr, caption: &Caption<'_>, points: &[NpsPoint]) -> String {
    let id = id_of(caption.id);
    let mut points: Vec<NpsPoint> = points.to_vec();
    points.sort_by_key(|p| p.period);
    let xs = x_positions(&points);
    let mut out = String::new();
    open_svg(
        &mut out,
        &id,
        LINE_WIDTH,
        LINE_HEIGHT,
        caption.title,
        caption.desc,
    );
    // The scale.
    for tick in [-100_i32, -50, 0, 50, 100] {
        let y = y_of(f64::from(tick));
        let _ = write!(
            out,
            "<line class=\"{class}\" x1=\"{x1}\" x2=\"{x2}\" y1=\"{y}\" y2=\"{y}\"/>\
             <text class=\"chart-text\" x=\"{tx}\" y=\"{ty}\" font-size=\"12\" \
             text-anchor=\"end\">{label}</text>",
            class = if tick == 0 {
                "chart-axis"
            } else {
                "chart-grid"
            },
            x1 = at(PLOT_LEFT),
            x2 = at(PLOT_RIGHT),
            y = at(y),
            tx = at(PLOT_LEFT - 6.0),
            ty = at(y + 4.0),
            label = escape(&tr.int(tick.into())),
        );
    }
    let scored: Vec<(f64, f64, f64)> = points
        .iter()
        .zip(&xs)
        .filter_map(|(p, x)| Some((*x, p.score?, p.margin.unwrap_or(0.0))))
        .collect();
    // The band: along the upper edge left to right, back along the lower edge.
    if scored.len() == 1 {
        let (x, score, margin) = scored[0];
        let (top, bottom) = (y_of(score + margin), y_of(score - margin));
        let _ = write!(
            out,
            "<rect class=\"chart-band\" x=\"{x}\" y=\"{y}\" width=\"16\" height=\"{h}\"/>",
            x = at(x - 8.0),
            y = at(top),
            h = at(bottom - top),
        );
    } else if scored.len() > 1 {
        let upper = scored.iter().map(|(x, s, m)| (*x, y_of(s + m)));
        let lower = scored.iter().rev().map(|(x, s, m)| (*x, y_of(s - m)));
        let outline: Vec<String> = upper
            .chain(lower)
            .map(|(x, y)| format!("{},{}", at(x), at(y)))
            .collect();
        let _ = write!(
            out,
            "<polygon class=\"chart-band\" points=\"{}\"/>",
            outline.join(" ")
        );
        let line: Vec<String> = scored
            .iter()
            .map(|(x, s, _)| format!("{},{}", at(*x), at(y_of(*s))))
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"chart-line\" fill=\"none\" points=\"{}\"/>",
            line.join(" ")
        );
    }
    // Each period: its point with a tooltip, and (for some) its date and count.
    let step = points.len().div_ceil(MAX_X_LABELS).max(1);
    for (i, (p, x)) in points.iter().zip(&xs).enumerate() {
        let date = tr.short_date(p.period);
        if let Some(score) = p.score {
            let tip = tr.with(
                "chart-nps-point",
                &[
                    ("period", date.clone()),
                    ("score", tr.decimal(score, 1)),
                    ("margin", tr.decimal(p.margin.unwrap_or(0.0), 1)),
                    ("count", tr.int(p.n)),
                ],
            );
            let _ = write!(
                out,
                "<circle class=\"chart-point\" cx=\"{x}\" cy=\"{y}\" r=\"4\"><title>{tip}</title></circle>",
                x = at(*x),
                y = at(y_of(score)),
                tip = escape(&tip),
            );
        }
        // Counted from the newest, so the latest period is always named and the labels
        // stay evenly spaced (never two crowded at the end).
        if (points.len() - 1 - i).is_multiple_of(step) {
            let count = tr.with("chart-count", &[("count", tr.int(p.n))]);
            let _ = write!(
                out,
                "<text class=\"chart-text\" x=\"{x}\" y=\"{y1}\" font-size=\"11\" text-anchor=\"middle\">{date}</text>\
                 <text class=\"chart-muted\" x=\"{x}\" y=\"{y2}\" font-size=\"11\" text-anchor=\"middle\">{count}</text>",
                x = at(*x),
                y1 = at(PLOT_BOTTOM + 22.0),
                y2 = at(PLOT_BOTTOM + 40.0),
                date = escape(&date),
                count = escape(&count),
            );
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portal::i18n::Lang;

    fn caption<'a>(title: &'a str) -> Caption<'a> {
        Caption {
            id: "c1",
            title,
            desc: "figures",
        }
    }

    fn week(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
    }

    #[test]
    fn text_is_escaped_and_ids_are_safe() {
        assert_eq!(
            escape("<b a=\"1\">&'x\u{7}"),
            "&lt;b a=&quot;1&quot;&gt;&amp;&#39;x"
        );
        assert_eq!(id_of("a\"><script>"), "ascript");
        let tr = Tr::new(Lang::En);
        let svg = stacked_bars(
            &tr,
            &caption("<script>alert(1)</script>"),
            &[Series {
                name: "A & B".into(),
                class: "c-allow",
            }],
            &[Bar {
                label: "x<y".into(),
                values: vec![3],
            }],
        );
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(svg.contains("A &amp; B") && svg.contains("x&lt;y"));
    }

    #[test]
    fn bars_are_split_by_share_and_name_themselves() {
        let tr = Tr::new(Lang::En);
        let series = [
            Series {
                name: "Allow".into(),
                class: "c-allow",
            },
            Series {
                name: "Deny".into(),
                class: "c-deny",
            },
        ];
        let svg = stacked_bars(
            &tr,
            &caption("Rates"),
            &series,
            &[
                Bar {
                    label: "Analytics".into(),
                    values: vec![3, 1],
                },
                Bar {
                    label: "Nobody".into(),
                    values: vec![0, 0],
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(
            svg.contains("role=\"img\"") && svg.contains("aria-labelledby=\"c1-title c1-desc\"")
        );
        assert!(svg.contains("<title id=\"c1-title\">Rates</title>"));
        assert!(svg.contains("direction=\"ltr\""));
        // 3 of 4 over a 402-unit track: 301.5 and 100.5.
        assert!(svg.contains("width=\"301.5\""), "{svg}");
        assert!(svg.contains("width=\"100.5\""));
        assert!(svg.contains("Allow: 3 (75.0%)"));
        // An empty bar has its track and no segment.
        assert_eq!(svg.matches("class=\"c-allow\" x=").count(), 2);
    }

    #[test]
    fn numbers_follow_the_language() {
        let tr = Tr::new(Lang::Ar);
        let svg = nps_trend(
            &tr,
            &caption("NPS"),
            &[NpsPoint {
                period: week(2),
                n: 12,
                score: Some(25.0),
                margin: Some(10.0),
            }],
        );
        assert!(svg.contains("-١٠٠") && svg.contains("٥٠"), "{svg}");
        assert!(svg.contains("٠٢/١١/٢٠٢٦"));
        assert!(svg.contains("١٢"));
        // One period: its band is a bar around the point, 35 to 15.
        assert!(svg.contains("<rect class=\"chart-band\""));
        assert!(svg.contains(&format!("height=\"{}\"", at(y_of(15.0) - y_of(35.0)))));
    }

    #[test]
    fn the_band_runs_along_the_upper_edge_and_back_along_the_lower() {
        let tr = Tr::new(Lang::En);
        let points = [
            NpsPoint {
                period: week(9),
                n: 4,
                score: Some(-50.0),
                margin: Some(60.0),
            },
            NpsPoint {
                period: week(2),
                n: 4,
                score: Some(100.0),
                margin: Some(0.0),
            },
        ];
        let svg = nps_trend(&tr, &caption("NPS"), &points);
        let band = svg
            .split("<polygon class=\"chart-band\" points=\"")
            .nth(1)
            .unwrap();
        let band: Vec<&str> = band[..band.find('"').unwrap()].split(' ').collect();
        // Sorted by period: the first week at the left; the band is clamped to ±100.
        assert_eq!(
            band,
            [
                format!("{},{}", at(68.0), at(y_of(100.0))),
                format!("{},{}", at(608.0), at(y_of(10.0))),
                format!("{},{}", at(608.0), at(y_of(-100.0))),
                format!("{},{}", at(68.0), at(y_of(100.0))),
            ]
        );
        assert!(svg.contains("<polyline class=\"chart-line\""));
        assert!(svg.contains("NPS -50.0 ± 60.0"), "{svg}");
        // Under each period its count, and in each point's tooltip.
        assert_eq!(svg.matches(">n = 4<").count(), 2);
        assert_eq!(svg.matches("(n = 4)").count(), 2);
    }

    #[test]
    fn long_labels_are_shortened_in_the_chart_only() {
        assert_eq!(shortened("abcdef", 4), "abc…");
        assert_eq!(shortened("abc", 4), "abc");
    }
}
