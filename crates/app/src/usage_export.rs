//! The biannual usage report presented: its figures (lines by device type and activity level,
//! devices with no carrier line by type, people by activity level, counted in SQL; what the
//! devices of its inactive lines cost a month in MDM service charges) and its exports — XLSX
//! (every row, every person, the recommendations, a summary) and PDF (a summary, then every row,
//! written and handed on page by page). Both read the rows a page at a time, so a report of any
//! size is exported in bounded memory.
//!
//! Like the rest of this crate it knows neither HTTP nor HTML: the web crate serves the bytes.

use std::io::Write;

use custody_domain::billing::Period;
use custody_domain::catalog::{Cents, DeviceType, rate_in_force};
use custody_domain::usage::{Activity, RecommendationKind};
use custody_store::usage_reports::{
    self as store, ActivityCount, RecommendationRow, ReportLine, ReportPerson, ReportRow,
};
use pdf_writer::{Chunk, Content, Filter, Finish, Name, Rect, Ref, Str};

use crate::certificate::{encode, wrap};
use crate::xlsx::{Cell, Workbook};
use crate::{Actor, App, AppError};

/// Rows read from the store at once while exporting.
const ROWS_PAGE: i64 = 2_000;

/// What the devices of a report's inactive lines cost a month in MDM service charges: each
/// device type's inactive lines times the service code's rate in force on the first day of the
/// report's last month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InactiveCharge {
    /// The MDM service code whose rates apply (`billing.service_code`).
    pub service_code: String,
    /// `YYYY-MM-DD`: the first day of the report's last month.
    pub rate_date: String,
    pub by_type: Vec<TypeCharge>,
    pub total_cents: i64,
    /// Inactive lines in no known device: no device is charged for them, so they count nothing.
    pub without_device: i64,
    /// Device types with inactive lines but no rate in force on `rate_date` (not counted).
    pub unrated: Vec<String>,
}

/// One device type's share of [`InactiveCharge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeCharge {
    pub device_type: String,
    pub lines: i64,
    pub rate_cents: i64,
    pub monthly_cents: i64,
}

/// A report as its page and its exports show it. Outside this crate only [`overview`] makes
/// one, after checking that the actor may read the report.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Overview {
    pub report: ReportRow,
    pub agency_name: String,
    pub recommendations: Vec<RecommendationRow>,
    /// The rows counted by device type and activity level (no level: devices with no line).
    pub counts: Vec<ActivityCount>,
    /// The people counted by activity level: `(activity, people)`.
    pub people_counts: Vec<(String, i64)>,
    pub inactive: InactiveCharge,
}

/// How a row with no carrier line shows where a line's activity level would.
pub const NO_LINE: &str = "no carrier line";

/// The label of a line's device type; `no device` for a line in no known device.
pub fn type_label(device_type: Option<&str>) -> String {
    device_type.map_or_else(|| "no device".to_string(), |t| t.replace('_', " "))
}

impl Overview {
    /// Lines per activity level, every level in order (inactive first).
    pub fn by_activity(&self) -> Vec<(Activity, i64)> {
        Activity::ALL
            .into_iter()
            .map(|a| {
                (a, self.counts.iter().filter(|c| c.activity.as_deref() == Some(a.as_str())).map(|c| c.lines).sum())
            })
            .collect()
    }

    /// People per activity level, every level in order (inactive first).
    pub fn people_by_activity(&self) -> Vec<(Activity, i64)> {
        Activity::ALL
            .into_iter()
            .map(|a| (a, self.people_counts.iter().filter(|(level, _)| level == a.as_str()).map(|(_, n)| n).sum()))
            .collect()
    }

    /// Devices in use with no carrier line per device type (labelled).
    pub fn without_line(&self) -> Vec<(String, i64)> {
        self.counts
            .iter()
            .filter(|c| c.activity.is_none())
            .map(|c| (type_label(c.device_type.as_deref()), c.lines))
            .collect()
    }

    /// Lines per device type (labelled, lines in no device last), split by activity level in
    /// the order of [`Activity::ALL`].
    pub fn by_type(&self) -> Vec<(String, [i64; 4])> {
        let mut types: Vec<Option<&str>> =
            self.counts.iter().filter(|c| c.activity.is_some()).map(|c| c.device_type.as_deref()).collect();
        types.sort_by_key(|t| (t.is_none(), *t));
        types.dedup();
        types
            .into_iter()
            .map(|t| {
                let mut levels = [0; 4];
                for c in self.counts.iter().filter(|c| c.device_type.as_deref() == t) {
                    if let Some(i) = Activity::ALL.iter().position(|a| Some(a.as_str()) == c.activity.as_deref()) {
                        levels[i] += c.lines;
                    }
                }
                (type_label(t), levels)
            })
            .collect()
    }

    /// The report's facts as labelled values: the heading of every export.
    pub fn summary(&self) -> Vec<(String, String)> {
        let r = &self.report;
        let mut rows = vec![
            ("Agency".to_string(), format!("{} {}", r.agency_code, self.agency_name).trim().to_string()),
            ("Window".into(), format!("{} to {}", r.first_month, r.last_month)),
            ("Issued".into(), format!("{} by {}", when(r.issued_at), r.issued_by)),
            ("Deemed accepted from".into(), when(r.deadline_at)),
            ("Lines".into(), r.line_count.to_string()),
            ("Recommendations".into(), r.recommendation_count.to_string()),
        ];
        for (level, lines) in self.by_activity() {
            rows.push((format!("{} lines", level.label()), lines.to_string()));
        }
        for (device_type, levels) in self.by_type() {
            let split: Vec<String> =
                Activity::ALL.iter().zip(levels).map(|(a, n)| format!("{} {n}", a.label().to_lowercase())).collect();
            rows.push((format!("Lines, {device_type}"), split.join(", ")));
        }
        let without_line = self.without_line();
        let devices: i64 = without_line.iter().map(|(_, n)| n).sum();
        let split: Vec<String> = without_line.iter().map(|(t, n)| format!("{t} {n}")).collect();
        let split = if split.is_empty() { String::new() } else { format!(" ({})", split.join(", ")) };
        rows.push(("Devices with no carrier line".into(), format!("{devices}{split}")));
        let people = self.people_by_activity();
        rows.push(("People".into(), people.iter().map(|(_, n)| n).sum::<i64>().to_string()));
        for (level, n) in people {
            rows.push((format!("{} people", level.label()), n.to_string()));
        }
        rows.push(("Inactive lines' MDM charge".into(), self.inactive_description()));
        rows
    }

    /// What the inactive lines' devices cost a month, and how it was reckoned.
    pub fn inactive_description(&self) -> String {
        let c = &self.inactive;
        let mut parts: Vec<String> = c
            .by_type
            .iter()
            .map(|t| format!("{} {} x ${}", t.lines, t.device_type.replace('_', " "), Cents(t.rate_cents).dollars()))
            .collect();
        if c.without_device > 0 {
            parts.push(format!("{} inactive lines in no known device not counted", c.without_device));
        }
        if !c.unrated.is_empty() {
            parts.push(format!("no rate in force for {}", c.unrated.join(", ")));
        }
        let how = if parts.is_empty() { String::new() } else { format!(" ({})", parts.join("; ")) };
        format!(
            "${} a month at service code {}'s rates in force on {}{how}",
            Cents(c.total_cents).dollars(),
            c.service_code,
            c.rate_date
        )
    }
}

/// `2026-11-22 14:05 UTC`, as the console shows instants.
fn when(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
}

/// A report with its recommendations and figures; another agency's answers not found.
pub async fn overview(app: &App, actor: &Actor, id: &str) -> Result<Overview, AppError> {
    let (report, recommendations) = crate::usage_reports::get(app, actor, id).await?;
    let mut conn = app.store.conn().await?;
    let counts = store::activity_counts(&mut conn, &report.id).await?;
    let people_counts = store::people_counts(&mut conn, &report.id).await?;
    let agency_name =
        custody_store::agencies::get(&mut conn, &report.agency_code).await?.map(|a| a.details.name).unwrap_or_default();
    let service_code = app.config.billing.service_code.clone();
    let service = custody_store::catalog::get_service_code(&mut conn, &service_code).await?;
    let last = Period::parse(&report.last_month).map_err(|e| AppError::Unexpected(anyhow::anyhow!(e)))?;
    let rate_date = last.first_day().to_string();
    let mut inactive = InactiveCharge {
        service_code,
        rate_date,
        by_type: Vec::new(),
        total_cents: 0,
        without_device: 0,
        unrated: Vec::new(),
    };
    for c in counts.iter().filter(|c| c.activity.as_deref() == Some(Activity::Inactive.as_str())) {
        let Some(device_type) = &c.device_type else {
            inactive.without_device += c.lines;
            continue;
        };
        let rate = service.as_ref().and_then(|s| {
            rate_in_force(&s.rates, &inactive.rate_date, device_type.parse::<DeviceType>().ok()).map(|r| r.amount.0)
        });
        match rate {
            Some(rate_cents) => {
                inactive.total_cents += rate_cents * c.lines;
                inactive.by_type.push(TypeCharge {
                    device_type: device_type.clone(),
                    lines: c.lines,
                    rate_cents,
                    monthly_cents: rate_cents * c.lines,
                });
            }
            None => inactive.unrated.push(device_type.clone()),
        }
    }
    Ok(Overview { report, agency_name, recommendations, counts, people_counts, inactive })
}

/// Every row of the report, a page at a time, handed to `each`.
async fn each_row(app: &App, report: &str, mut each: impl FnMut(&ReportLine)) -> Result<(), AppError> {
    let mut after = 0;
    loop {
        let page = {
            let mut conn = app.store.conn().await?;
            store::rows(&mut conn, report, after, ROWS_PAGE).await?
        };
        for row in &page {
            each(row);
        }
        match page.last() {
            Some(last) if page.len() as i64 == ROWS_PAGE => after = last.row_no,
            _ => return Ok(()),
        }
    }
}

/// The columns of the rows in every export.
pub const ROW_COLUMNS: [&str; 12] = [
    "row",
    "phone_number",
    "line_plan",
    "device_type",
    "serial",
    "holder",
    "months",
    "voice_minutes",
    "messages",
    "data_mb",
    "international",
    "activity",
];

/// A row's cells as text, in the order of [`ROW_COLUMNS`]. A device with no carrier line has
/// no number, plan or figures, and [`NO_LINE`] for its activity.
pub fn row_cells(l: &ReportLine) -> [String; 12] {
    let line = l.activity.is_some();
    let figure = |value: String| if line { value } else { String::new() };
    [
        l.row_no.to_string(),
        l.phone_number.clone().unwrap_or_default(),
        l.line_plan.clone().unwrap_or_default(),
        l.device_type.clone().unwrap_or_default(),
        l.serial.clone().unwrap_or_default(),
        l.holder_name.clone().unwrap_or_default(),
        figure(l.months.to_string()),
        figure(l.voice_minutes.to_string()),
        figure(l.messages.to_string()),
        figure(mb(l.data_kb)),
        figure(Cents(l.international_cents).dollars()),
        l.activity.clone().unwrap_or_else(|| NO_LINE.to_string()),
    ]
}

fn mb(kb: i64) -> String {
    format!("{}.{:03}", kb / 1_000, kb % 1_000)
}

/// The columns of the people in every export.
pub const PERSON_COLUMNS: [&str; 9] =
    ["person_id", "person", "lines", "months", "voice_minutes", "messages", "data_mb", "international", "activity"];

/// A person's cells as text, in the order of [`PERSON_COLUMNS`].
pub fn person_cells(p: &ReportPerson) -> [String; 9] {
    [
        p.person_id.clone(),
        p.person_name.clone().unwrap_or_default(),
        p.lines.to_string(),
        p.months.to_string(),
        p.voice_minutes.to_string(),
        p.messages.to_string(),
        mb(p.data_kb),
        Cents(p.international_cents).dollars(),
        p.activity.clone(),
    ]
}

/// Every person of the report, a page at a time, handed to `each`.
async fn each_person(app: &App, report: &str, mut each: impl FnMut(&ReportPerson)) -> Result<(), AppError> {
    let mut after = String::new();
    loop {
        let page = {
            let mut conn = app.store.conn().await?;
            store::people(&mut conn, report, &after, ROWS_PAGE).await?
        };
        for person in &page {
            each(person);
        }
        match page.last() {
            Some(last) if page.len() as i64 == ROWS_PAGE => after = last.person_id.clone(),
            _ => return Ok(()),
        }
    }
}

/// The columns of the recommendations in every export.
pub const RECOMMENDATION_COLUMNS: [&str; 9] =
    ["kind", "phone_number", "detail", "status", "explanation", "decided_by", "decided_at", "deadline", "request"];

fn recommendation_cells(r: &RecommendationRow) -> [String; 9] {
    [
        r.kind.clone(),
        r.phone_number.clone().unwrap_or_default(),
        r.detail.clone(),
        r.status.clone(),
        r.explanation.clone().unwrap_or_default(),
        r.decided_by.clone().unwrap_or_default(),
        r.decided_at.map(when).unwrap_or_default(),
        when(r.deadline_at),
        r.request_id.clone().unwrap_or_default(),
    ]
}

/// The report as an XLSX workbook: the sheet `Lines` with every row (figures as numbers),
/// `People` with each person's activity, `Recommendations` with their answers, and `Summary`.
pub async fn xlsx(app: &App, overview: &Overview) -> Result<Vec<u8>, AppError> {
    let text = |s: &str| if s.is_empty() { Cell::Empty } else { Cell::Text(s.to_string()) };
    let mut workbook = Workbook::new();
    workbook.sheet("Lines");
    workbook.row(&ROW_COLUMNS.map(|c| Cell::Text(c.to_string())));
    each_row(app, &overview.report.id, |l| {
        let cells = row_cells(l);
        let row: Vec<Cell> = cells
            .iter()
            .enumerate()
            .map(|(i, v)| if matches!(i, 0 | 6..=10) && !v.is_empty() { Cell::Number(v.clone()) } else { text(v) })
            .collect();
        workbook.row(&row);
    })
    .await?;
    workbook.sheet("People");
    workbook.row(&PERSON_COLUMNS.map(|c| Cell::Text(c.to_string())));
    each_person(app, &overview.report.id, |p| {
        let row: Vec<Cell> = person_cells(p)
            .iter()
            .enumerate()
            .map(|(i, v)| if matches!(i, 2..=7) { Cell::Number(v.clone()) } else { text(v) })
            .collect();
        workbook.row(&row);
    })
    .await?;
    workbook.sheet("Recommendations");
    workbook.row(&RECOMMENDATION_COLUMNS.map(|c| Cell::Text(c.to_string())));
    for r in &overview.recommendations {
        workbook.row(&recommendation_cells(r).map(|v| text(&v)));
    }
    workbook.sheet("Summary");
    for (label, value) in overview.summary() {
        workbook.row(&[Cell::Text(label), text(&value)]);
    }
    Ok(workbook.finish())
}

/// A4 landscape, in points.
const PAGE: (f32, f32) = (842.0, 595.0);
const TOP: f32 = 550.0;
const BOTTOM: f32 = 40.0;
const LEFT: f32 = 40.0;
/// Where each row column starts, and how many characters it shows.
const ROW_LAYOUT: [(f32, usize); 12] = [
    (40.0, 7),
    (78.0, 14),
    (148.0, 11),
    (200.0, 11),
    (252.0, 16),
    (330.0, 28),
    (470.0, 6),
    (505.0, 9),
    (555.0, 9),
    (605.0, 12),
    (670.0, 12),
    (735.0, 15),
];
const ROW_HEADINGS: [&str; 12] = [
    "Row",
    "Phone",
    "Plan",
    "Type",
    "Serial",
    "Holder",
    "Months",
    "Voice min",
    "Messages",
    "Data MB",
    "Intl $",
    "Activity",
];

const CATALOG: Ref = Ref::new(1);
const TREE: Ref = Ref::new(2);
const FONT: Ref = Ref::new(3);
const BOLD: Ref = Ref::new(4);
const REGULAR_NAME: Name<'static> = Name(b"F1");
const BOLD_NAME: Name<'static> = Name(b"F2");

/// A PDF written page by page: each finished page's objects are ready to send at once, and
/// only their offsets (and the page list) are kept for the cross-reference table at the end.
struct PdfStream {
    /// Bytes ready to hand on, and how many were handed on before them.
    ready: Vec<u8>,
    sent: usize,
    /// Where object `n` starts, at index `n - 1`.
    offsets: Vec<usize>,
    pages: Vec<Ref>,
    content: Content,
    drawn: bool,
    y: f32,
}

impl PdfStream {
    fn new() -> Self {
        Self {
            ready: b"%PDF-1.7\n%\x80\x80\x80\x80\n\n".to_vec(),
            sent: 0,
            offsets: vec![0; 4],
            pages: Vec::new(),
            content: Content::new(),
            drawn: false,
            y: TOP,
        }
    }

    /// Writes one indirect object, recording where it starts.
    fn object(&mut self, id: Ref, write: impl FnOnce(&mut Chunk)) {
        let index = id.get() as usize - 1;
        if self.offsets.len() <= index {
            self.offsets.resize(index + 1, 0);
        }
        self.offsets[index] = self.sent + self.ready.len();
        let mut chunk = Chunk::new();
        write(&mut chunk);
        self.ready.extend_from_slice(chunk.as_bytes());
    }

    fn text(&mut self, x: f32, size: f32, bold: bool, text: &str) {
        self.content.begin_text();
        self.content.set_font(if bold { BOLD_NAME } else { REGULAR_NAME }, size);
        self.content.next_line(x, self.y);
        self.content.show(Str(&encode(text)));
        self.content.end_text();
        self.drawn = true;
    }

    /// Finishes the page being drawn: its content (compressed) and the page itself.
    fn end_page(&mut self) {
        let content = std::mem::replace(&mut self.content, Content::new()).finish();
        let mut deflate = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        deflate.write_all(&content).expect("compressing in memory");
        let data = deflate.finish().expect("compressing in memory");
        let n = self.pages.len() as i32;
        let (content_id, page_id) = (Ref::new(5 + 2 * n), Ref::new(6 + 2 * n));
        self.object(content_id, |c| {
            c.stream(content_id, &data).filter(Filter::FlateDecode);
        });
        self.object(page_id, |c| {
            let mut page = c.page(page_id);
            page.media_box(Rect::new(0.0, 0.0, PAGE.0, PAGE.1));
            page.parent(TREE);
            page.contents(content_id);
            let mut resources = page.resources();
            let mut fonts = resources.fonts();
            fonts.pair(REGULAR_NAME, FONT);
            fonts.pair(BOLD_NAME, BOLD);
            fonts.finish();
            resources.finish();
            page.finish();
        });
        self.pages.push(page_id);
        self.drawn = false;
        self.y = TOP;
    }

    /// Room for `height` more points on this page, else a new page.
    fn room(&mut self, height: f32) -> bool {
        if self.y - height < BOTTOM {
            self.end_page();
            return false;
        }
        true
    }

    fn heading(&mut self, text: &str) {
        self.room(30.0);
        self.y -= 6.0;
        self.text(LEFT, 12.0, true, text);
        self.y -= 18.0;
    }

    fn field(&mut self, label: &str, value: &str) {
        let parts = wrap(value, 100);
        self.room(14.0 * parts.len() as f32);
        self.text(LEFT + 10.0, 9.5, true, label);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                self.y -= 13.0;
            }
            self.text(LEFT + 230.0, 9.5, false, part);
        }
        self.y -= 14.0;
    }

    /// One line of the rows table; `bold` for its headings.
    fn row(&mut self, cells: &[String], bold: bool) {
        for ((x, width), cell) in ROW_LAYOUT.iter().zip(cells) {
            let shown: String = if cell.chars().count() > *width {
                cell.chars().take(width - 1).chain(std::iter::once('~')).collect()
            } else {
                cell.clone()
            };
            self.text(*x, 8.0, bold, &shown);
        }
        self.y -= 11.0;
    }

    /// The bytes ready to hand on.
    fn take(&mut self) -> Vec<u8> {
        self.sent += self.ready.len();
        std::mem::take(&mut self.ready)
    }

    /// Ends the last page and writes the catalog, page tree, fonts, cross-reference table and
    /// trailer.
    fn finish(mut self) -> Vec<u8> {
        if self.drawn || self.pages.is_empty() {
            self.end_page();
        }
        let pages = std::mem::take(&mut self.pages);
        self.object(CATALOG, |c| {
            c.indirect(CATALOG).start::<pdf_writer::writers::Catalog>().pages(TREE);
        });
        self.object(TREE, |c| {
            c.pages(TREE).kids(pages.iter().copied()).count(pages.len() as i32);
        });
        self.object(FONT, |c| {
            c.type1_font(FONT).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
        });
        self.object(BOLD, |c| {
            c.type1_font(BOLD).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
        });
        let xref = self.sent + self.ready.len();
        let mut tail = format!("xref\n0 {}\n0000000000 65535 f\r\n", self.offsets.len() + 1);
        for offset in &self.offsets {
            tail.push_str(&format!("{offset:010} 00000 n\r\n"));
        }
        tail.push_str(&format!(
            "trailer\n<< /Size {} /Root {} 0 R >>\nstartxref\n{xref}\n%%EOF",
            self.offsets.len() + 1,
            CATALOG.get()
        ));
        self.ready.extend_from_slice(tail.as_bytes());
        self.take()
    }
}

/// The report as a PDF (A4 landscape): the summary, the recommendations with their answers,
/// then every row. Handed to `out` page by page as the rows are read; stops early, without
/// error, when nobody reads `out` any more.
pub async fn pdf(app: &App, overview: &Overview, out: tokio::sync::mpsc::Sender<Vec<u8>>) -> Result<(), AppError> {
    let r = &overview.report;
    let mut pdf = PdfStream::new();
    pdf.text(LEFT, 16.0, true, &format!("Biannual usage report: {} {}", r.agency_code, overview.agency_name));
    pdf.y -= 28.0;
    for (label, value) in overview.summary() {
        pdf.field(&label, &value);
    }
    pdf.heading("Recommendations");
    if overview.recommendations.is_empty() {
        pdf.field("None", "the report recommends nothing");
    }
    for rec in &overview.recommendations {
        let kind = RecommendationKind::parse(&rec.kind).map_or(rec.kind.clone(), |k| k.label().to_string());
        let mut value = format!("{} | {}", rec.status.replace('_', " "), rec.detail);
        if let Some(explanation) = &rec.explanation {
            value.push_str(&format!(" | explanation: {explanation}"));
        }
        if let Some(request) = &rec.request_id {
            value.push_str(&format!(" | request {request}"));
        }
        let label = rec.phone_number.clone().unwrap_or_else(|| "(a person's plans)".into());
        pdf.field(&label, &format!("{kind}: {value}"));
    }
    if out.send(pdf.take()).await.is_err() {
        return Ok(());
    }
    // The rows, from a new page, their headings at the top of each.
    pdf.end_page();
    let title = format!("{} usage report {} to {}: lines", r.agency_code, r.first_month, r.last_month);
    let headings: Vec<String> = ROW_HEADINGS.iter().map(|h| h.to_string()).collect();
    let mut after = 0;
    loop {
        let page = {
            let mut conn = app.store.conn().await?;
            store::rows(&mut conn, &r.id, after, ROWS_PAGE).await?
        };
        for l in &page {
            if !pdf.drawn || !pdf.room(11.0) {
                pdf.text(LEFT, 10.0, true, &format!("{title} (page {})", pdf.pages.len() + 1));
                pdf.y -= 20.0;
                pdf.row(&headings, true);
            }
            pdf.row(&row_cells(l), false);
        }
        if out.send(pdf.take()).await.is_err() {
            return Ok(());
        }
        match page.last() {
            Some(last) if page.len() as i64 == ROWS_PAGE => after = last.row_no,
            _ => break,
        }
    }
    let _ = out.send(pdf.finish()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_pdf_has_a_cross_reference_for_every_object() {
        let mut pdf = PdfStream::new();
        let mut bytes = Vec::new();
        for page in 0..3 {
            pdf.text(LEFT, 12.0, true, &format!("Page {page}"));
            pdf.end_page();
            bytes.extend(pdf.take());
        }
        pdf.text(LEFT, 12.0, false, "last");
        bytes.extend(pdf.finish());
        assert!(bytes.starts_with(b"%PDF-1.7"));
        let find = |needle: &[u8]| bytes.windows(needle.len()).rposition(|w| w == needle);
        let xref = find(b"\nxref\n").unwrap() + 1;
        let table = String::from_utf8(bytes[xref..].to_vec()).expect("the table and trailer are ASCII");
        assert!(String::from_utf8_lossy(&bytes).contains("/Count 4"), "four pages");
        // Every offset in the table points at its object's header.
        let entries: Vec<&str> = table.lines().skip(3).take_while(|l| l.ends_with(" n")).collect();
        assert_eq!(entries.len(), 12, "catalog, tree, two fonts, four pages of two objects");
        for (i, entry) in entries.iter().enumerate() {
            let offset: usize = entry[..10].parse().unwrap();
            assert!(bytes[offset..].starts_with(format!("{} 0 obj", i + 1).as_bytes()), "object {}", i + 1);
        }
        let startxref: usize = table.rsplit("startxref\n").next().unwrap().trim_end_matches("\n%%EOF").parse().unwrap();
        assert_eq!(startxref, xref);
    }
}
