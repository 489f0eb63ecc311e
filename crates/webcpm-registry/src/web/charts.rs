//! Charts as inline SVG, drawn by the server: no script, nothing fetched, so they pass the
//! page's `Content-Security-Policy`. A chart has lines (a step line holds its value until the
//! next point) over a time axis, and marks: points with a title that says what happened there.
//! Colours come from the page's stylesheet by class, so that they follow light and dark mode.

use maud::{Markup, html};

/// The drawing's size in SVG units; it scales to the page's width.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
/// Room for the axes' labels.
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// One line: its points as (time, value), in time order.
pub(crate) struct Line {
    pub name: String,
    /// The stylesheet class that colours it.
    pub class: &'static str,
    pub points: Vec<(i64, f64)>,
    /// Holds each value until the next point (a setting), rather than joining them (a rate).
    pub step: bool,
}

/// A point to mark, with what happened there.
pub(crate) struct Mark {
    pub at: i64,
    pub value: f64,
    pub class: &'static str,
    pub title: String,
}

/// A chart over `from..=to` (Unix seconds) and `0..=top`.
pub(crate) struct Chart {
    /// Said to screen readers (the table beside the chart has the figures).
    pub label: String,
    pub from: i64,
    pub to: i64,
    pub top: f64,
    /// The value axis' unit, after its top label ("%", "‰").
    pub unit: &'static str,
    pub lines: Vec<Line>,
    pub marks: Vec<Mark>,
}

impl Chart {
    fn x(&self, at: i64) -> f64 {
        let span = (self.to - self.from).max(1) as f64;
        LEFT + (at.clamp(self.from, self.to) - self.from) as f64 / span * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, value: f64) -> f64 {
        let top = if self.top > 0.0 { self.top } else { 1.0 };
        HEIGHT - BOTTOM - value.clamp(0.0, top) / top * (HEIGHT - TOP - BOTTOM)
    }

    /// The `points` attribute of a line.
    fn path(&self, line: &Line) -> String {
        let mut out = Vec::new();
        let mut last: Option<f64> = None;
        for &(at, value) in &line.points {
            if let (true, Some(previous)) = (line.step, last) {
                out.push(format!("{:.1},{:.1}", self.x(at), self.y(previous)));
            }
            out.push(format!("{:.1},{:.1}", self.x(at), self.y(value)));
            last = Some(value);
        }
        if let (true, Some(value)) = (line.step, last) {
            out.push(format!("{:.1},{:.1}", self.x(self.to), self.y(value)));
        }
        out.join(" ")
    }

    /// A time axis' label: the date, and the time of day too when the chart spans two days or
    /// less.
    fn when(&self, at: i64) -> String {
        if self.to - self.from <= 2 * 86_400 {
            format!("{} UTC", super::time(at))
        } else {
            super::date(at)
        }
    }

    /// The chart as an `<svg>` element.
    pub(crate) fn svg(&self) -> Markup {
        let (bottom, right) = (HEIGHT - BOTTOM, WIDTH - RIGHT);
        html! {
            svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(self.label) {
                line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(bottom) {}
                line.axis x1=(LEFT) y1=(bottom) x2=(right) y2=(bottom) {}
                line.grid x1=(LEFT) y1=(self.y(self.top / 2.0)) x2=(right) y2=(self.y(self.top / 2.0)) {}
                text.tick x=(LEFT - 6.0) y=(TOP + 4.0) text-anchor="end" { (number(self.top)) (self.unit) }
                text.tick x=(LEFT - 6.0) y=(bottom) text-anchor="end" { "0" }
                text.tick x=(LEFT) y=(HEIGHT - 8.0) { (self.when(self.from)) }
                text.tick x=(right) y=(HEIGHT - 8.0) text-anchor="end" { (self.when(self.to)) }
                @for line in &self.lines {
                    polyline class={ "line " (line.class) } points=(self.path(line)) {
                        title { (line.name) }
                    }
                }
                @for mark in &self.marks {
                    circle class={ "mark " (mark.class) } cx=(format!("{:.1}", self.x(mark.at)))
                        cy=(format!("{:.1}", self.y(mark.value))) r="5" {
                        title { (mark.title) }
                    }
                }
            }
        }
    }
}

/// A value for an axis label: whole numbers without decimals.
fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_line_holds_its_value_and_marks_carry_titles() {
        let chart = Chart {
            label: "v3 percent".into(),
            from: 0,
            to: 100,
            top: 100.0,
            unit: "%",
            lines: vec![Line {
                name: "v3".into(),
                class: "v3",
                points: vec![(0, 10.0), (50, 30.0)],
                step: true,
            }],
            marks: vec![Mark {
                at: 50,
                value: 30.0,
                class: "manual",
                title: "<by ops> & why".into(),
            }],
        };
        let svg = chart.svg().into_string();
        // 10% from 0 to 50, then up to 30% until the end: four corners.
        let y10 = format!("{:.1}", chart.y(10.0));
        let y30 = format!("{:.1}", chart.y(30.0));
        let expected = format!("44.0,{y10} 336.0,{y10} 336.0,{y30} 628.0,{y30}");
        assert!(svg.contains(&expected), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("&lt;by ops&gt; &amp; why"), "{svg}");
        assert!(svg.contains("aria-label=\"v3 percent\""));
    }
}
