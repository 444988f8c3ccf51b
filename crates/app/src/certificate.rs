//! The NIST SP 800-88 Certificate of Sanitization as a one-page PDF: standard Helvetica (no
//! embedded font), text only, every field of the record with the validation.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

/// One labelled line or a section heading of the certificate.
pub enum Line {
    Heading(String),
    Field(String, String),
    Text(String),
}

/// Text in the font's encoding (WinAnsi): Latin-1 characters as they are, others as `?`.
pub(crate) fn encode(text: &str) -> Vec<u8> {
    text.chars().map(|c| if (c as u32) < 256 && !c.is_control() { c as u32 as u8 } else { b'?' }).collect()
}

/// Splits `text` into lines of at most `width` characters at spaces.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("one line at least");
        if !last.is_empty() && last.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

/// Renders the certificate: a title, then `lines` (continuing onto more pages when long).
pub fn render(title: &str, lines: &[Line]) -> Vec<u8> {
    let (catalog, tree, font, bold) = (Ref::new(1), Ref::new(2), Ref::new(3), Ref::new(4));
    let (regular_name, bold_name) = (Name(b"F1"), Name(b"F2"));
    let mut pages: Vec<Content> = Vec::new();
    let mut content = Content::new();
    let mut y = 800.0;
    let start_text = |content: &mut Content, y: f32, size: f32, name: Name, x: f32, text: &[u8]| {
        content.begin_text();
        content.set_font(name, size);
        content.next_line(x, y);
        content.show(Str(text));
        content.end_text();
    };
    start_text(&mut content, y, 16.0, bold_name, 50.0, &encode(title));
    y -= 28.0;
    for line in lines {
        if y < 60.0 {
            pages.push(std::mem::replace(&mut content, Content::new()));
            y = 800.0;
        }
        match line {
            Line::Heading(text) => {
                y -= 6.0;
                start_text(&mut content, y, 12.0, bold_name, 50.0, &encode(text));
                y -= 18.0;
            }
            Line::Field(label, value) => {
                start_text(&mut content, y, 9.5, bold_name, 60.0, &encode(label));
                for (i, part) in wrap(value, 62).iter().enumerate() {
                    if i > 0 {
                        y -= 13.0;
                    }
                    start_text(&mut content, y, 9.5, regular_name, 230.0, &encode(part));
                }
                y -= 14.0;
            }
            Line::Text(text) => {
                for part in wrap(text, 95) {
                    start_text(&mut content, y, 9.0, regular_name, 50.0, &encode(&part));
                    y -= 12.0;
                }
            }
        }
    }
    pages.push(content);
    let mut pdf = Pdf::new();
    let page_ids: Vec<Ref> = (0..pages.len()).map(|i| Ref::new(10 + 2 * i as i32)).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_ids.iter().copied()).count(pages.len() as i32);
    for (i, content) in pages.into_iter().enumerate() {
        let content_id = Ref::new(11 + 2 * i as i32);
        let mut page = pdf.page(page_ids[i]);
        page.media_box(Rect::new(0.0, 0.0, 595.0, 842.0));
        page.parent(tree);
        page.contents(content_id);
        let mut resources = page.resources();
        let mut fonts = resources.fonts();
        fonts.pair(regular_name, font);
        fonts.pair(bold_name, bold);
        fonts.finish();
        resources.finish();
        page.finish();
        pdf.stream(content_id, &content.finish());
    }
    pdf.type1_font(font).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pdf_with_every_line() {
        let lines: Vec<Line> = (0..120).map(|i| Line::Field(format!("Field {i}"), "value ".repeat(20))).collect();
        let pdf = render("Certificate of Sanitization", &lines);
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Count 4") || text.contains("/Count 5") || text.contains("/Count 6"), "several pages");
        assert!(text.contains("Helvetica-Bold"));
    }
}
