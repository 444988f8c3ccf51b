//! Office Open XML spreadsheets (`.xlsx`), small and dependency-light: a writer of one sheet of
//! text and number cells, and a reader of a workbook's first sheet as rows of text (shared and
//! inline strings, numbers, booleans) for imports and for tests that read an export back.

use std::io::{Cursor, Read, Write};

use quick_xml::Reader;
use quick_xml::events::Event;

/// A cell to write.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// A number written as given (e.g. `15.00`), so no float rounding enters.
    Number(String),
    Empty,
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // Characters XML 1.0 cannot carry.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn column_name(mut index: usize) -> String {
    let mut name = Vec::new();
    loop {
        name.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    name.reverse();
    String::from_utf8(name).expect("ASCII")
}

/// A workbook of one sheet named `sheet` holding `rows`.
pub fn write(sheet: &str, rows: &[Vec<Cell>]) -> Vec<u8> {
    let mut workbook = Workbook::new();
    workbook.sheet(sheet);
    for row in rows {
        workbook.row(row);
    }
    workbook.finish()
}

const SHEET_HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<worksheet \
     xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>";
const SHEET_TAIL: &str = "</sheetData></worksheet>";

/// A workbook written sheet by sheet and row by row straight into its compressed archive: it
/// holds the compressed file, never all the cells, so a sheet may have any number of rows.
pub struct Workbook {
    zip: zip::ZipWriter<Cursor<Vec<u8>>>,
    sheets: Vec<String>,
    /// Rows written to the open sheet.
    rows: usize,
}

impl Default for Workbook {
    fn default() -> Self {
        Self::new()
    }
}

impl Workbook {
    pub fn new() -> Self {
        Self { zip: zip::ZipWriter::new(Cursor::new(Vec::new())), sheets: Vec::new(), rows: 0 }
    }

    fn start(&mut self, name: &str) {
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        self.zip.start_file(name, options).expect("an in-memory zip");
    }

    fn put(&mut self, text: &str) {
        self.zip.write_all(text.as_bytes()).expect("an in-memory zip");
    }

    /// Starts the next sheet, named `name` (Excel's forbidden characters dropped, at most 31).
    pub fn sheet(&mut self, name: &str) {
        if !self.sheets.is_empty() {
            self.put(SHEET_TAIL);
        }
        self.sheets.push(name.chars().filter(|c| !"[]:*?/\\".contains(*c)).take(31).collect());
        self.rows = 0;
        self.start(&format!("xl/worksheets/sheet{}.xml", self.sheets.len()));
        self.put(SHEET_HEAD);
    }

    /// Appends a row to the open sheet (a first sheet named `Sheet1` when none is open).
    pub fn row(&mut self, row: &[Cell]) {
        if self.sheets.is_empty() {
            self.sheet("Sheet1");
        }
        self.rows += 1;
        let r = self.rows;
        let mut data = format!("<row r=\"{r}\">");
        for (c, cell) in row.iter().enumerate() {
            let at = format!("{}{r}", column_name(c));
            match cell {
                Cell::Text(text) => data.push_str(&format!(
                    "<c r=\"{at}\" t=\"inlineStr\"><is><t xml:space=\"preserve\">{}</t></is></c>",
                    escape(text)
                )),
                Cell::Number(n) => data.push_str(&format!("<c r=\"{at}\"><v>{}</v></c>", escape(n))),
                Cell::Empty => {}
            }
        }
        data.push_str("</row>");
        self.put(&data);
    }

    /// Closes the open sheet, writes the workbook's parts and returns the file.
    pub fn finish(mut self) -> Vec<u8> {
        if self.sheets.is_empty() {
            self.sheet("Sheet1");
        }
        self.put(SHEET_TAIL);
        let sheets = std::mem::take(&mut self.sheets);
        let overrides: String = (1..=sheets.len())
            .map(|n| {
                format!(
                    "<Override PartName=\"/xl/worksheets/sheet{n}.xml\" \
                     ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>"
                )
            })
            .collect();
        let entries: String = sheets
            .iter()
            .enumerate()
            .map(|(i, name)| format!("<sheet name=\"{}\" sheetId=\"{n}\" r:id=\"rId{n}\"/>", escape(name), n = i + 1))
            .collect();
        let relationships: String = (1..=sheets.len())
            .map(|n| {
                format!(
                    "<Relationship Id=\"rId{n}\" \
                     Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" \
                     Target=\"worksheets/sheet{n}.xml\"/>"
                )
            })
            .collect();
        let files: [(&str, String); 5] = [
            (
                "[Content_Types].xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Types \
                     xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
                     <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
                     <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
                     <Override PartName=\"/xl/workbook.xml\" \
                     ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>\
                     {overrides}\
                     <Override PartName=\"/xl/styles.xml\" \
                     ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml\"/>\
                     </Types>"
                ),
            ),
            (
                "_rels/.rels",
                "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Relationships \
                 xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" \
                 Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" \
                 Target=\"xl/workbook.xml\"/></Relationships>"
                    .into(),
            ),
            (
                "xl/workbook.xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<workbook \
                     xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" \
                     xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><sheets>\
                     {entries}</sheets></workbook>"
                ),
            ),
            (
                "xl/_rels/workbook.xml.rels",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Relationships \
                     xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">{relationships}\
                     <Relationship Id=\"rId{}\" \
                     Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles\" \
                     Target=\"styles.xml\"/></Relationships>",
                    sheets.len() + 1
                ),
            ),
            (
                "xl/styles.xml",
                "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<styleSheet \
                 xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">\
                 <fonts count=\"1\"><font><sz val=\"11\"/><name val=\"Calibri\"/></font></fonts>\
                 <fills count=\"2\"><fill><patternFill patternType=\"none\"/></fill>\
                 <fill><patternFill patternType=\"gray125\"/></fill></fills>\
                 <borders count=\"1\"><border><left/><right/><top/><bottom/><diagonal/></border></borders>\
                 <cellStyleXfs count=\"1\"><xf numFmtId=\"0\" fontId=\"0\" fillId=\"0\" borderId=\"0\"/></cellStyleXfs>\
                 <cellXfs count=\"1\"><xf numFmtId=\"0\" fontId=\"0\" fillId=\"0\" borderId=\"0\" xfId=\"0\"/></cellXfs>\
                 </styleSheet>"
                    .into(),
            ),
        ];
        for (name, content) in files {
            self.start(name);
            self.put(&content);
        }
        self.zip.finish().expect("an in-memory zip").into_inner()
    }
}

/// Why a workbook could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not a readable .xlsx workbook: {0}")]
pub struct ReadError(String);

fn read_part(archive: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str) -> Result<Option<String>, ReadError> {
    let mut file = match archive.by_name(name) {
        Ok(file) => file,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(ReadError(e.to_string())),
    };
    if file.size() > 256 * 1024 * 1024 {
        return Err(ReadError(format!("{name} is larger than 256 MB")));
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|e| ReadError(format!("{name}: {e}")))?;
    Ok(Some(text))
}

/// The cell reference's column index: `C7` is 2.
fn column_of(reference: &str) -> Option<usize> {
    let letters: String = reference.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    if letters.is_empty() {
        return None;
    }
    Some(letters.bytes().fold(0usize, |acc, b| acc * 26 + (b.to_ascii_uppercase() - b'A' + 1) as usize) - 1)
}

fn shared_strings(xml: &str) -> Result<Vec<String>, ReadError> {
    let mut reader = Reader::from_str(xml);
    let (mut strings, mut current, mut in_text, mut in_item) = (Vec::new(), String::new(), false, false);
    loop {
        match reader.read_event().map_err(|e| ReadError(e.to_string()))? {
            Event::Start(e) if e.local_name().as_ref() == "si" => {
                in_item = true;
                current.clear();
            }
            Event::Start(e) if e.local_name().as_ref() == "t" => in_text = in_item,
            Event::End(e) if e.local_name().as_ref() == "t" => in_text = false,
            Event::End(e) if e.local_name().as_ref() == "si" => {
                in_item = false;
                strings.push(std::mem::take(&mut current));
            }
            Event::Text(t) if in_text => current.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_text => current.push_str(&resolve(&r)?),
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(strings)
}

fn resolve(reference: &quick_xml::events::BytesRef<'_>) -> Result<String, ReadError> {
    if let Some(c) = reference.resolve_char_ref().map_err(|e| ReadError(e.to_string()))? {
        return Ok(c.to_string());
    }
    let name = reference.clone().into_inner();
    Ok(match name.as_ref() {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        other => return Err(ReadError(format!("unknown entity &{other};"))),
    }
    .to_string())
}

/// The first sheet of a workbook as rows of cell text (empty cells as empty strings).
pub fn read_first_sheet(bytes: &[u8]) -> Result<Vec<Vec<String>>, ReadError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ReadError(e.to_string()))?;
    let shared = match read_part(&mut archive, "xl/sharedStrings.xml")? {
        Some(xml) => shared_strings(&xml)?,
        None => Vec::new(),
    };
    let sheet = read_part(&mut archive, "xl/worksheets/sheet1.xml")?
        .ok_or_else(|| ReadError("it has no first worksheet (xl/worksheets/sheet1.xml)".into()))?;
    sheet_rows(&sheet, &shared)
}

/// The attribute `key` (local name) of an element, unescaped.
fn attribute(e: &quick_xml::events::BytesStart<'_>, key: &str) -> Result<Option<String>, ReadError> {
    for attr in e.attributes().flatten() {
        if attr.key.local_name().as_ref() == key {
            let text =
                attr.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|e| ReadError(e.to_string()))?;
            return Ok(Some(text.into_owned()));
        }
    }
    Ok(None)
}

/// The sheet named `name` as rows of cell text, found through the workbook and its
/// relationships; `None` when the workbook has no such sheet.
pub fn read_sheet(bytes: &[u8], name: &str) -> Result<Option<Vec<Vec<String>>>, ReadError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ReadError(e.to_string()))?;
    let workbook =
        read_part(&mut archive, "xl/workbook.xml")?.ok_or_else(|| ReadError("it has no xl/workbook.xml".into()))?;
    let mut relationship = None;
    let mut reader = Reader::from_str(&workbook);
    loop {
        match reader.read_event().map_err(|e| ReadError(e.to_string()))? {
            Event::Start(e) | Event::Empty(e)
                if e.local_name().as_ref() == "sheet" && attribute(&e, "name")?.as_deref() == Some(name) =>
            {
                relationship = attribute(&e, "id")?;
                break;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let Some(relationship) = relationship else { return Ok(None) };
    let rels = read_part(&mut archive, "xl/_rels/workbook.xml.rels")?
        .ok_or_else(|| ReadError("it has no xl/_rels/workbook.xml.rels".into()))?;
    let mut target = None;
    let mut reader = Reader::from_str(&rels);
    loop {
        match reader.read_event().map_err(|e| ReadError(e.to_string()))? {
            Event::Start(e) | Event::Empty(e)
                if e.local_name().as_ref() == "Relationship"
                    && attribute(&e, "Id")?.as_deref() == Some(relationship.as_str()) =>
            {
                target = attribute(&e, "Target")?;
                break;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let target = target.ok_or_else(|| ReadError(format!("sheet {name:?} names no part")))?;
    let part = match target.strip_prefix('/') {
        Some(absolute) => absolute.to_string(),
        None => format!("xl/{target}"),
    };
    let shared = match read_part(&mut archive, "xl/sharedStrings.xml")? {
        Some(xml) => shared_strings(&xml)?,
        None => Vec::new(),
    };
    let sheet = read_part(&mut archive, &part)?.ok_or_else(|| ReadError(format!("{part} is missing")))?;
    sheet_rows(&sheet, &shared).map(Some)
}

/// A worksheet's XML as rows of cell text.
fn sheet_rows(sheet: &str, shared: &[String]) -> Result<Vec<Vec<String>>, ReadError> {
    let mut reader = Reader::from_str(sheet);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let (mut kind, mut value, mut in_value) = (String::new(), String::new(), false);
    loop {
        match reader.read_event().map_err(|e| ReadError(e.to_string()))? {
            Event::Start(e) if e.local_name().as_ref() == "row" => row.clear(),
            Event::End(e) if e.local_name().as_ref() == "row" => rows.push(std::mem::take(&mut row)),
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == "c" => {
                kind.clear();
                value.clear();
                let mut column = row.len();
                for attr in e.attributes().flatten() {
                    let text = attr
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| ReadError(e.to_string()))?;
                    match attr.key.local_name().as_ref() {
                        "r" => column = column_of(&text).unwrap_or(column),
                        "t" => kind = text.into_owned(),
                        _ => {}
                    }
                }
                if column > 16_384 {
                    return Err(ReadError("a cell lies beyond column XFD".into()));
                }
                while row.len() < column {
                    row.push(String::new());
                }
            }
            Event::End(e) if e.local_name().as_ref() == "c" => {
                let text = match kind.as_str() {
                    "s" => {
                        let index: usize = value
                            .trim()
                            .parse()
                            .map_err(|_| ReadError("a shared string index is not a number".into()))?;
                        shared.get(index).cloned().ok_or_else(|| ReadError("a shared string is missing".into()))?
                    }
                    "b" => if value.trim() == "1" { "TRUE" } else { "FALSE" }.to_string(),
                    _ => value.clone(),
                };
                row.push(text);
            }
            Event::Start(e) if matches!(e.local_name().as_ref(), "v" | "t") => in_value = true,
            Event::End(e) if matches!(e.local_name().as_ref(), "v" | "t") => in_value = false,
            Event::Text(t) if in_value => value.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_value => value.push_str(&resolve(&r)?),
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_sheet_reads_back_cell_for_cell() {
        let rows = vec![
            vec![Cell::Text("Line".into()), Cell::Text("Amount & <notes>".into())],
            vec![Cell::Number("1".into()), Cell::Number("15.00".into()), Cell::Text("\"quoted\" 'text'".into())],
            vec![Cell::Empty, Cell::Text("after a gap".into())],
        ];
        let bytes = write("Invoice 2026-07", &rows);
        let back = read_first_sheet(&bytes).unwrap();
        assert_eq!(
            back,
            vec![
                vec!["Line".to_string(), "Amount & <notes>".into()],
                vec!["1".into(), "15.00".into(), "\"quoted\" 'text'".into()],
                vec!["".into(), "after a gap".into()],
            ]
        );
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(26), "AA");
        assert_eq!(column_of("AA12"), Some(26));
    }

    #[test]
    fn a_workbook_of_several_sheets_reads_back_sheet_by_sheet() {
        let mut workbook = Workbook::new();
        workbook.sheet("Lines");
        for n in 1..=3 {
            workbook.row(&[Cell::Number(n.to_string()), Cell::Text(format!("line {n}"))]);
        }
        workbook.sheet("Notes & more");
        workbook.row(&[Cell::Text("a note".into())]);
        let bytes = workbook.finish();
        let lines = read_first_sheet(&bytes).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2], ["3", "line 3"]);
        assert_eq!(read_sheet(&bytes, "Lines").unwrap(), Some(lines));
        assert_eq!(read_sheet(&bytes, "Notes & more").unwrap(), Some(vec![vec!["a note".to_string()]]));
        assert_eq!(read_sheet(&bytes, "Missing").unwrap(), None);
    }

    #[test]
    fn shared_strings_are_resolved_and_garbage_is_refused() {
        let shared = "<sst><si><t>Agency</t></si><si><r><t>D</t></r><r><t>OT</t></r></si></sst>";
        assert_eq!(shared_strings(shared).unwrap(), ["Agency", "DOT"]);
        assert!(read_first_sheet(b"not a zip").is_err());
    }
}
