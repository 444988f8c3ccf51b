//! SVG charts drawn by Custody: no script, no font download, no inline style (the
//! Content-Security-Policy allows none: the stylesheet scales them), readable by screen readers
//! (a title, a description and a text value on every bar).

/// Escapes text for SVG/HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A horizontal bar chart of `(label, value)`; `id` names the `<svg>` element.
pub fn bar_chart(title: &str, bars: &[(String, i64)], id: &str) -> String {
    bar_chart_with(title, bars, id, |v| v.to_string())
}

/// A horizontal bar chart whose values are shown by `show` (e.g. as dollars).
pub fn bar_chart_with(title: &str, bars: &[(String, i64)], id: &str, show: impl Fn(i64) -> String) -> String {
    if bars.is_empty() {
        return "<p class=\"hint\">Nothing to show yet.</p>".to_string();
    }
    let max = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let longest = bars.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0) as f64;
    let (label_w, bar_w, row_h) = ((longest * 7.0 + 10.0).max(90.0), 260.0, 26.0);
    let height = row_h * bars.len() as f64 + 8.0;
    let width = label_w + bar_w + 70.0;
    let mut svg = format!(
        "<svg class=\"chart\" id=\"{id}\" role=\"img\" aria-labelledby=\"{id}-title\" viewBox=\"0 0 {width} {height}\" \
         width=\"{width}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"{id}-title\">{}</title>",
        escape(title)
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = 4.0 + row_h * i as f64;
        let w = (bar_w * *value as f64 / max as f64).max(if *value > 0 { 1.0 } else { 0.0 });
        svg.push_str(&format!(
            "<g data-label=\"{label}\" data-value=\"{value}\"><text x=\"0\" y=\"{ty}\">{label}</text>\
             <rect class=\"bar\" x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bh}\"></rect>\
             <text x=\"{tx:.1}\" y=\"{ty}\">{shown}</text></g>",
            label = escape(label),
            shown = escape(&show(*value)),
            ty = y + 15.0,
            bh = row_h - 8.0,
            tx = label_w + w + 6.0,
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// A column chart of `(label, value)` over time (oldest first), values shown by `show` in each
/// column's title and the largest one on the axis; `id` names the `<svg>` element.
pub fn column_chart(title: &str, columns: &[(String, i64)], id: &str, show: impl Fn(i64) -> String) -> String {
    if columns.is_empty() {
        return "<p class=\"hint\">Nothing to show yet.</p>".to_string();
    }
    let max = columns.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let (left, plot_h, col_w, gap) = (8.0, 160.0, 22.0, 6.0);
    // Room for the axis label and the last column's slanted month, however few the columns.
    let width = (left + (col_w + gap) * columns.len() as f64 + 40.0).max(240.0);
    let height = plot_h + 58.0;
    let mut svg = format!(
        "<svg class=\"chart\" id=\"{id}\" role=\"img\" aria-labelledby=\"{id}-title\" viewBox=\"0 0 {width} {height}\" \
         width=\"{width}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"{id}-title\">{}</title>\
         <text x=\"{left}\" y=\"12\">max {}</text>",
        escape(title),
        escape(&show(max))
    );
    for (i, (label, value)) in columns.iter().enumerate() {
        let x = left + (col_w + gap) * i as f64;
        let h = (plot_h * (*value).max(0) as f64 / max as f64).max(if *value > 0 { 1.0 } else { 0.0 });
        let y = 18.0 + plot_h - h;
        svg.push_str(&format!(
            "<g data-label=\"{label}\" data-value=\"{value}\"><title>{label}: {shown}</title>\
             <rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{col_w}\" height=\"{h:.1}\"></rect>\
             <text x=\"{tx:.1}\" y=\"{ty:.1}\" transform=\"rotate(60 {tx:.1} {ty:.1})\" font-size=\"10\">{label}</text></g>",
            label = escape(label),
            shown = escape(&show(*value)),
            tx = x + 4.0,
            ty = 18.0 + plot_h + 10.0,
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// Columns of stacked segments: one column per `(label, values)`, its values (one per entry of
/// `series`, drawn bottom up in the classes `series-0`, `series-1`…) stacked to its total, which
/// is written above it; a legend names the series. `id` names the `<svg>` element.
pub fn stacked_columns(title: &str, series: &[&str], columns: &[(String, Vec<i64>)], id: &str) -> String {
    if columns.iter().all(|(_, values)| values.iter().all(|v| *v <= 0)) {
        return "<p class=\"hint\">Nothing to show yet.</p>".to_string();
    }
    let total = |values: &[i64]| values.iter().map(|v| (*v).max(0)).sum::<i64>();
    let max = columns.iter().map(|(_, v)| total(v)).max().unwrap_or(0).max(1);
    let (left, top, plot_h, col_w, gap) = (8.0, 34.0, 160.0, 56.0, 24.0);
    let width = (left + (col_w + gap) * columns.len() as f64).max(82.0 * series.len() as f64).max(240.0);
    let height = top + plot_h + 24.0;
    let mut svg = format!(
        "<svg class=\"chart\" id=\"{id}\" role=\"img\" aria-labelledby=\"{id}-title\" viewBox=\"0 0 {width} {height}\" \
         width=\"{width}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"{id}-title\">{}</title>",
        escape(title)
    );
    for (i, name) in series.iter().enumerate() {
        let x = left + 82.0 * i as f64;
        svg.push_str(&format!(
            "<g class=\"legend\"><rect class=\"series-{i}\" x=\"{x}\" y=\"2\" width=\"10\" height=\"10\"></rect>\
             <text x=\"{tx}\" y=\"11\">{}</text></g>",
            escape(name),
            tx = x + 14.0,
        ));
    }
    for (c, (label, values)) in columns.iter().enumerate() {
        let x = left + (col_w + gap) * c as f64;
        let mut y = top + plot_h;
        for (i, value) in values.iter().enumerate() {
            let h = plot_h * (*value).max(0) as f64 / max as f64;
            y -= h;
            svg.push_str(&format!(
                "<g data-label=\"{label}\" data-series=\"{name}\" data-value=\"{value}\"><title>{label}, {name}: {value}</title>\
                 <rect class=\"bar series-{i}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{col_w}\" height=\"{h:.1}\"></rect></g>",
                label = escape(label),
                name = escape(series.get(i).copied().unwrap_or("")),
            ));
        }
        svg.push_str(&format!(
            "<text x=\"{x:.1}\" y=\"{ty:.1}\" font-size=\"11\">{}</text>\
             <text x=\"{x:.1}\" y=\"{ly:.1}\" font-size=\"11\">{}</text>",
            total(values),
            escape(label),
            ty = y - 4.0,
            ly = top + plot_h + 16.0,
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    #[test]
    fn bars_carry_their_values_and_escape_labels() {
        let svg = super::bar_chart("People", &[("A<B".into(), 10), ("C".into(), 5)], "c");
        assert!(svg.contains("data-value=\"10\"") && svg.contains("data-value=\"5\""));
        assert!(svg.contains("A&lt;B") && !svg.contains("A<B"));
        assert!(svg.contains("width=\"260.0\"") && svg.contains("width=\"130.0\""));
    }

    #[test]
    fn columns_scale_to_the_largest_and_show_formatted_values() {
        let svg =
            super::column_chart("Amount", &[("2026-01".into(), 200), ("2026-02".into(), 50)], "m", |v| format!("${v}"));
        assert!(svg.contains("height=\"160.0\"") && svg.contains("height=\"40.0\""));
        assert!(svg.contains("2026-02: $50") && svg.contains("max $200"));
        let bars = super::bar_chart_with("T", &[("a".into(), 7)], "b", |v| format!("<{v}>"));
        assert!(bars.contains("&lt;7&gt;"));
    }

    #[test]
    fn stacked_columns_stack_each_series_and_total_the_column() {
        let svg = super::stacked_columns(
            "Lines",
            &["inactive", "active"],
            &[("smart<phone".into(), vec![1, 3]), ("tablet".into(), vec![2, 0])],
            "s",
        );
        // The tallest column (4) fills the plot: 40 a line.
        assert!(svg.contains("data-series=\"inactive\" data-value=\"1\"") && svg.contains("height=\"40.0\""));
        assert!(svg.contains("class=\"bar series-1\"") && svg.contains("height=\"120.0\""));
        assert!(svg.contains(">4</text>") && svg.contains(">2</text>"), "the totals above the columns");
        assert!(svg.contains("smart&lt;phone, inactive: 1") && !svg.contains("smart<phone"));
        assert!(super::stacked_columns("Lines", &["a"], &[("t".into(), vec![0])], "e").contains("Nothing to show"));
    }
}
