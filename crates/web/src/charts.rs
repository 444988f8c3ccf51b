//! SVG charts drawn by Custody: no script, no font download, readable by screen readers
//! (a title, a description and a text value on every bar).

/// Escapes text for SVG/HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A horizontal bar chart of `(label, value)`; `id` names the `<svg>` element.
pub fn bar_chart(title: &str, bars: &[(String, i64)], id: &str) -> String {
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
         width=\"100%\" style=\"max-width:{width}px\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"{id}-title\">{}</title>",
        escape(title)
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = 4.0 + row_h * i as f64;
        let w = (bar_w * *value as f64 / max as f64).max(if *value > 0 { 1.0 } else { 0.0 });
        svg.push_str(&format!(
            "<g data-label=\"{label}\" data-value=\"{value}\"><text x=\"0\" y=\"{ty}\">{label}</text>\
             <rect class=\"bar\" x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bh}\"></rect>\
             <text x=\"{tx:.1}\" y=\"{ty}\">{value}</text></g>",
            label = escape(label),
            ty = y + 15.0,
            bh = row_h - 8.0,
            tx = label_w + w + 6.0,
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
}
