//! Call detail records as PBXs write them (pure): Asterisk's `cdr_csv` (`Master.csv`),
//! `cdr_custom` with a configured column template, FreeSWITCH's `mod_cdr_csv` (default template)
//! and `mod_json_cdr` (one JSON document per call), parsed into one [`CallRecord`] type.
//!
//! The CSV grammar is the csv crate's (Asterisk quotes every text field and doubles a quote
//! inside one); times are the PBX's wall-clock times (`YYYY-MM-DD HH:MM:SS`), read in the
//! configured time zone by jiff, or Unix epochs where the PBX gives them (FreeSWITCH JSON). A
//! row that cannot be read is an error that says why; the caller names it by file and line.

use crate::metadata::Direction;
use serde::{Deserialize, Serialize};

/// How a call ended, as the CDR says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Answered,
    NoAnswer,
    Busy,
    Failed,
    Congestion,
}

impl Disposition {
    /// Asterisk's words (`ANSWERED`, `NO ANSWER`, `BUSY`, `FAILED`, `CONGESTION`), or a
    /// FreeSWITCH hangup cause with the billable seconds that tell whether it was answered.
    fn parse(text: &str, billsec: u32) -> Result<Disposition, String> {
        let t = text.trim().to_ascii_uppercase();
        Ok(match t.as_str() {
            "ANSWERED" => Disposition::Answered,
            "NO ANSWER" | "NOANSWER" => Disposition::NoAnswer,
            "BUSY" => Disposition::Busy,
            "FAILED" => Disposition::Failed,
            "CONGESTION" => Disposition::Congestion,
            // FreeSWITCH: the cause of the hangup; answered when time was billed.
            _ if billsec > 0 => Disposition::Answered,
            "NO_ANSWER" | "ORIGINATOR_CANCEL" | "NO_USER_RESPONSE" | "ALLOTTED_TIMEOUT" => {
                Disposition::NoAnswer
            }
            "USER_BUSY" | "CALL_REJECTED" => Disposition::Busy,
            "NORMAL_CIRCUIT_CONGESTION" | "SWITCH_CONGESTION" => Disposition::Congestion,
            "NORMAL_CLEARING" => Disposition::NoAnswer,
            _ if t.chars().all(|c| c.is_ascii_uppercase() || c == '_') && !t.is_empty() => {
                Disposition::Failed
            }
            _ => return Err(format!("unknown disposition {text:?}")),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::NoAnswer => "no_answer",
            Disposition::Busy => "busy",
            Disposition::Failed => "failed",
            Disposition::Congestion => "congestion",
        }
    }
}

/// One CDR row: one leg of a call, as the PBX logged it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The leg's id: Asterisk's `uniqueid`, FreeSWITCH's `uuid`.
    pub id: String,
    /// The call the leg belongs to: Asterisk's `linkedid`, FreeSWITCH's `bridge_uuid` / b-leg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_id: Option<String>,
    pub start_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_ms: Option<i64>,
    pub end_ms: i64,
    pub duration_s: u32,
    /// Billable (answered) seconds.
    pub billsec: u32,
    pub disposition: Disposition,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub src: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dst: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub clid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub channel: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dst_channel: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_app: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub userfield: String,
    /// The recording the PBX says it wrote for the leg (FreeSWITCH `record_*` variables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
    /// The queue the leg went through: Asterisk's `Queue` application's first argument
    /// (`lastdata`), FreeSWITCH's `cc_queue` or `fifo_name`, or a `queue` column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The call's direction where the PBX gives it (FreeSWITCH's `call_direction`, or a
    /// `direction` column); else `calls.direction_by_context` decides from the context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
}

impl CallRecord {
    /// The call this leg belongs to (its linked id, else its own id).
    pub fn call_key(&self) -> &str {
        self.linked_id
            .as_deref()
            .filter(|l| !l.is_empty())
            .unwrap_or(&self.id)
    }
}

/// A CSV column, by the name Asterisk and FreeSWITCH give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    #[serde(alias = "accountcode")]
    Account,
    Src,
    Dst,
    #[serde(alias = "dcontext")]
    Context,
    Clid,
    Channel,
    #[serde(alias = "dstchannel")]
    DstChannel,
    #[serde(alias = "lastapp")]
    LastApp,
    /// The last application's arguments (Asterisk `lastdata`): the queue of a `Queue` call.
    #[serde(alias = "lastdata")]
    LastData,
    /// The queue's name, where a custom template has it.
    Queue,
    /// `inbound`, `outbound` or `internal` (`local`), where a template has it.
    #[serde(alias = "call_direction")]
    Direction,
    /// Start of the call (`start`, `calldate`, `start_stamp`).
    #[serde(alias = "calldate", alias = "start_stamp")]
    Start,
    #[serde(alias = "answer_stamp")]
    Answer,
    #[serde(alias = "end_stamp")]
    End,
    Duration,
    Billsec,
    /// `ANSWERED` &c., or a FreeSWITCH hangup cause.
    #[serde(alias = "hangup_cause")]
    Disposition,
    #[serde(alias = "uniqueid", alias = "uuid")]
    UniqueId,
    #[serde(alias = "linkedid", alias = "bleg_uuid", alias = "bridge_uuid")]
    LinkedId,
    #[serde(alias = "userfield")]
    UserField,
    /// Read and not used (`amaflags`, codecs, ...).
    #[serde(other)]
    Ignore,
}

/// Asterisk `cdr_csv`'s columns (with `loguniqueid` and `loguserfield`, its defaults).
pub const ASTERISK_CSV: [Column; 18] = [
    Column::Account,
    Column::Src,
    Column::Dst,
    Column::Context,
    Column::Clid,
    Column::Channel,
    Column::DstChannel,
    Column::LastApp,
    Column::LastData,
    Column::Start,
    Column::Answer,
    Column::End,
    Column::Duration,
    Column::Billsec,
    Column::Disposition,
    Column::Ignore, // amaflags
    Column::UniqueId,
    Column::UserField,
];

/// FreeSWITCH `mod_cdr_csv`'s default template.
pub const FREESWITCH_CSV: [Column; 15] = [
    Column::Clid, // caller_id_name
    Column::Src,  // caller_id_number
    Column::Dst,  // destination_number
    Column::Context,
    Column::Start,
    Column::Answer,
    Column::End,
    Column::Duration,
    Column::Billsec,
    Column::Disposition, // hangup_cause
    Column::UniqueId,    // uuid
    Column::LinkedId,    // bleg_uuid
    Column::Account,
    Column::Ignore, // read_codec
    Column::Ignore, // write_codec
];

/// The columns of one CSV source.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(pub Vec<Column>);

impl Template {
    /// Asterisk's `Master.csv`: 18 columns, or 21 with `newcdrcolumns` (peeraccount, linkedid,
    /// sequence), told apart row by row.
    pub fn asterisk_csv() -> Template {
        Template(ASTERISK_CSV.to_vec())
    }

    pub fn freeswitch_csv() -> Template {
        Template(FREESWITCH_CSV.to_vec())
    }
}

/// The time zone CDR wall-clock times are read in.
#[derive(Debug, Clone)]
pub struct Zone(jiff::tz::TimeZone);

impl Zone {
    /// An IANA name (`Europe/Paris`), `UTC`, or `local` (the system's zone).
    pub fn get(name: &str) -> Result<Zone, String> {
        match name {
            "UTC" | "utc" | "" => Ok(Zone(jiff::tz::TimeZone::UTC)),
            "local" => Ok(Zone(jiff::tz::TimeZone::system())),
            _ => jiff::tz::TimeZone::get(name)
                .map(Zone)
                .map_err(|e| format!("unknown time zone {name:?}: {e}")),
        }
    }

    /// `YYYY-MM-DD HH:MM:SS` (fractions of a second allowed) in this zone, in ms since the epoch.
    pub fn wall_clock_ms(&self, text: &str) -> Result<i64, String> {
        let t = text.trim();
        let civil = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", t)
            .or_else(|_| jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S%.f", t))
            .map_err(|_| format!("bad time {text:?} (want YYYY-MM-DD HH:MM:SS)"))?;
        civil
            .to_zoned(self.0.clone())
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| format!("bad time {text:?}: {e}"))
    }
}

/// Reads the fields of one CSV line (a whole line, without its newline).
pub fn csv_fields(line: &[u8]) -> Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line);
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => {}
        Ok(false) => return Err("empty line".into()),
        Err(e) => return Err(format!("not CSV: {e}")),
    }
    record
        .iter()
        .enumerate()
        .map(|(i, f)| {
            String::from_utf8(f.to_vec()).map_err(|_| format!("field {} is not UTF-8", i + 1))
        })
        .collect()
}

/// One CSV row under a template.
pub fn from_fields(
    fields: &[String],
    template: &Template,
    zone: &Zone,
) -> Result<CallRecord, String> {
    let mut columns = template.0.clone();
    // Asterisk with `newcdrcolumns`: peeraccount, linkedid, sequence follow.
    if columns == ASTERISK_CSV && fields.len() == ASTERISK_CSV.len() + 3 {
        columns.extend([Column::Ignore, Column::LinkedId, Column::Ignore]);
    }
    if fields.len() != columns.len() {
        return Err(format!(
            "{} columns, the template has {}",
            fields.len(),
            columns.len()
        ));
    }
    let mut r = Row::default();
    for (column, value) in columns.iter().zip(fields) {
        let v = value.as_str();
        match column {
            Column::Account => r.account = v.into(),
            Column::Src => r.src = v.into(),
            Column::Dst => r.dst = v.into(),
            Column::Context => r.context = v.into(),
            Column::Clid => r.clid = v.into(),
            Column::Channel => r.channel = v.into(),
            Column::DstChannel => r.dst_channel = v.into(),
            Column::LastApp => r.last_app = v.into(),
            Column::LastData => r.last_data = v.into(),
            Column::Queue => r.queue = Some(v.trim().to_string()).filter(|q| !q.is_empty()),
            Column::Direction => r.direction = parse_direction(v),
            Column::Start => {
                r.start = Some(zone.wall_clock_ms(v).map_err(|e| format!("start: {e}"))?)
            }
            Column::Answer if v.trim().is_empty() => {}
            Column::Answer => {
                r.answer = Some(zone.wall_clock_ms(v).map_err(|e| format!("answer: {e}"))?)
            }
            Column::End if v.trim().is_empty() => {}
            Column::End => r.end = Some(zone.wall_clock_ms(v).map_err(|e| format!("end: {e}"))?),
            Column::Duration => r.duration = Some(seconds(v, "duration")?),
            Column::Billsec => r.billsec = Some(seconds(v, "billsec")?),
            Column::Disposition => r.disposition = Some(v.into()),
            Column::UniqueId => r.id = v.trim().into(),
            Column::LinkedId => r.linked_id = Some(v.trim().to_string()).filter(|l| !l.is_empty()),
            Column::UserField => r.userfield = v.into(),
            Column::Ignore => {}
        }
    }
    r.finish()
}

/// A FreeSWITCH `mod_json_cdr` document (its `variables`, values URL-encoded or not).
pub fn from_freeswitch_json(text: &str) -> Result<CallRecord, String> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let vars = doc
        .get("variables")
        .and_then(|v| v.as_object())
        .ok_or("no \"variables\" object")?;
    let var = |k: &str| -> String {
        vars.get(k)
            .map(|v| match v {
                serde_json::Value::String(s) => percent_decode(s),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    let epoch_ms = |k: &str| -> Result<Option<i64>, String> {
        let v = var(k);
        if v.is_empty() || v == "0" {
            return Ok(None);
        }
        v.parse::<i64>()
            .map(|s| Some(s * 1000))
            .map_err(|_| format!("{k}: not a Unix time: {v:?}"))
    };
    let mut r = Row {
        id: var("uuid"),
        linked_id: Some(var("bridge_uuid"))
            .filter(|l| !l.is_empty())
            .or_else(|| Some(var("signal_bond")).filter(|l| !l.is_empty())),
        start: epoch_ms("start_epoch")?,
        answer: epoch_ms("answer_epoch")?,
        end: epoch_ms("end_epoch")?,
        duration: Some(var("duration"))
            .filter(|d| !d.is_empty())
            .map(|d| seconds(&d, "duration"))
            .transpose()?,
        billsec: Some(var("billsec"))
            .filter(|d| !d.is_empty())
            .map(|d| seconds(&d, "billsec"))
            .transpose()?,
        disposition: Some(var("hangup_cause")).filter(|d| !d.is_empty()),
        src: var("caller_id_number"),
        dst: var("destination_number"),
        clid: var("caller_id_name"),
        context: var("context"),
        account: var("accountcode"),
        queue: ["cc_queue", "fifo_name"]
            .iter()
            .map(|k| var(k))
            .find(|v| !v.is_empty()),
        direction: parse_direction(&var("call_direction")),
        ..Row::default()
    };
    // The recording the leg wrote: record_session / record_stereo file, as FreeSWITCH names it.
    r.recording = ["record_file_name", "record_path", "recording_file"]
        .iter()
        .map(|k| var(k))
        .find(|v| !v.is_empty());
    if r.id.is_empty() {
        if let Some(core) = doc.get("core-uuid").and_then(|v| v.as_str()) {
            r.id = core.to_string();
        }
    }
    r.finish()
}

#[derive(Default)]
struct Row {
    id: String,
    linked_id: Option<String>,
    start: Option<i64>,
    answer: Option<i64>,
    end: Option<i64>,
    duration: Option<u32>,
    billsec: Option<u32>,
    disposition: Option<String>,
    src: String,
    dst: String,
    clid: String,
    context: String,
    channel: String,
    dst_channel: String,
    last_app: String,
    last_data: String,
    account: String,
    userfield: String,
    recording: Option<String>,
    queue: Option<String>,
    direction: Option<Direction>,
}

/// A direction as PBXs write it; anything else is no direction (not an error: the context
/// may still tell).
fn parse_direction(text: &str) -> Option<Direction> {
    match text.trim().to_ascii_lowercase().as_str() {
        "inbound" | "in" | "incoming" => Some(Direction::Inbound),
        "outbound" | "out" | "outgoing" => Some(Direction::Outbound),
        "internal" | "local" => Some(Direction::Internal),
        _ => None,
    }
}

impl Row {
    fn finish(self) -> Result<CallRecord, String> {
        if self.id.is_empty() {
            return Err("no unique id (uniqueid / uuid)".into());
        }
        let start_ms = self.start.ok_or("no start time")?;
        let billsec = self.billsec.unwrap_or(0);
        let duration_s = self.duration.unwrap_or(billsec);
        let end_ms = self.end.unwrap_or(start_ms + i64::from(duration_s) * 1000);
        if end_ms < start_ms {
            return Err("the call ends before it starts".into());
        }
        let disposition = match &self.disposition {
            Some(d) => Disposition::parse(d, billsec)?,
            None if billsec > 0 => Disposition::Answered,
            None => Disposition::NoAnswer,
        };
        // Asterisk's Queue(name,options,...): the queue is the first argument (`|` in old
        // versions).
        let queue = self.queue.or_else(|| {
            self.last_app
                .eq_ignore_ascii_case("queue")
                .then(|| self.last_data.split([',', '|']).next().unwrap_or("").trim())
                .filter(|q| !q.is_empty())
                .map(str::to_string)
        });
        Ok(CallRecord {
            id: self.id,
            linked_id: self.linked_id,
            start_ms,
            answer_ms: self.answer,
            end_ms,
            duration_s,
            billsec,
            disposition,
            src: self.src,
            dst: self.dst,
            clid: self.clid,
            context: self.context,
            channel: self.channel,
            dst_channel: self.dst_channel,
            last_app: self.last_app,
            account: self.account,
            userfield: self.userfield,
            recording: self.recording,
            queue,
            direction: self.direction,
        })
    }
}

fn seconds(text: &str, what: &str) -> Result<u32, String> {
    let t = text.trim();
    t.parse::<u32>()
        .or_else(|_| t.parse::<f64>().map(|s| s.max(0.0).round() as u32))
        .map_err(|_| format!("{what}: not a number of seconds: {text:?}"))
}

/// `%XX` escapes decoded (FreeSWITCH URL-encodes JSON CDR values by default); a bad escape is
/// kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> Zone {
        Zone::get("UTC").unwrap()
    }

    #[test]
    fn asterisk_master_csv_rows_are_read_as_asterisk_writes_them() {
        let line = br#""","1001","2000","from-internal","""Alice"" <1001>","PJSIP/1001-00000001","PJSIP/2000-00000002","Dial","PJSIP/2000,30,tT","2026-12-01 09:00:00","2026-12-01 09:00:05","2026-12-01 09:03:05",185,180,"ANSWERED","DOCUMENTATION","1764579600.1","sales""#;
        let r = from_fields(
            &csv_fields(line).unwrap(),
            &Template::asterisk_csv(),
            &utc(),
        )
        .unwrap();
        assert_eq!(r.id, "1764579600.1");
        assert_eq!(r.clid, "\"Alice\" <1001>");
        assert_eq!((r.duration_s, r.billsec), (185, 180));
        assert_eq!(r.disposition, Disposition::Answered);
        assert_eq!(r.start_ms, 1_796_115_600_000);
        assert_eq!(r.answer_ms, Some(1_796_115_605_000));
        assert_eq!(r.end_ms, 1_796_115_785_000);
        assert_eq!(r.userfield, "sales");
        assert_eq!(r.call_key(), "1764579600.1");
        assert_eq!(r.queue, None, "Dial names no queue");
        // A call through Queue(): the queue is lastdata's first argument.
        let queued = String::from_utf8_lossy(line).replace(
            r#""Dial","PJSIP/2000,30,tT""#,
            r#""Queue","support,tT,,,300""#,
        );
        let r = from_fields(
            &csv_fields(queued.as_bytes()).unwrap(),
            &Template::asterisk_csv(),
            &utc(),
        )
        .unwrap();
        assert_eq!(r.queue.as_deref(), Some("support"));
        assert_eq!(r.direction, None, "Asterisk writes no direction");
        // newcdrcolumns: peeraccount, linkedid, sequence.
        let mut longer = line.to_vec();
        longer.extend_from_slice(br#","","1764579600.0","7""#);
        let r = from_fields(
            &csv_fields(&longer).unwrap(),
            &Template::asterisk_csv(),
            &utc(),
        )
        .unwrap();
        assert_eq!(r.call_key(), "1764579600.0");
    }

    #[test]
    fn times_are_read_in_the_configured_zone() {
        let paris = Zone::get("Europe/Paris").unwrap();
        // 10:00 in Paris in December is 09:00 UTC.
        assert_eq!(
            paris.wall_clock_ms("2026-12-01 10:00:00").unwrap(),
            1_796_115_600_000
        );
        assert!(Zone::get("Mars/Olympus").is_err());
    }

    #[test]
    fn bad_rows_say_why() {
        let zone = utc();
        let t = Template::asterisk_csv();
        let short = csv_fields(b"\"a\",\"b\"").unwrap();
        assert!(from_fields(&short, &t, &zone)
            .unwrap_err()
            .contains("2 columns"));
        let line = br#""","1","2","c","x","ch","dch","Dial","","2026-13-45 99:00:00","","2026-12-01 09:03:05",1,1,"ANSWERED","","u1","""#;
        assert!(from_fields(&csv_fields(line).unwrap(), &t, &zone)
            .unwrap_err()
            .starts_with("start: bad time"));
        assert!(csv_fields(b"\"a\xff\",\"b\"")
            .unwrap_err()
            .contains("not UTF-8"));
        let unknown = br#""","1","2","c","x","ch","dch","Dial","","2026-12-01 09:00:00","","2026-12-01 09:03:05",1,0,"maybe?","","u1","""#;
        assert!(from_fields(&csv_fields(unknown).unwrap(), &t, &zone)
            .unwrap_err()
            .contains("disposition"));
    }

    #[test]
    fn freeswitch_csv_and_json_give_the_same_call() {
        let line = br#""Alice","1001","2000","default","2026-12-01 09:00:00","2026-12-01 09:00:05","2026-12-01 09:03:05","185","180","NORMAL_CLEARING","a1b2c3d4-0000-4000-8000-000000000001","a1b2c3d4-0000-4000-8000-000000000002","","PCMU","PCMU""#;
        let csv = from_fields(
            &csv_fields(line).unwrap(),
            &Template::freeswitch_csv(),
            &utc(),
        )
        .unwrap();
        let json = r#"{"core-uuid":"x","variables":{"uuid":"a1b2c3d4-0000-4000-8000-000000000001",
            "bridge_uuid":"a1b2c3d4-0000-4000-8000-000000000002","start_epoch":"1796115600",
            "answer_epoch":"1796115605","end_epoch":"1796115785","duration":"185","billsec":"180",
            "hangup_cause":"NORMAL_CLEARING","caller_id_number":"1001","destination_number":"2000",
            "caller_id_name":"Alice","context":"default","cc_queue":"support%40default",
            "call_direction":"inbound",
            "record_file_name":"%2Fvar%2Flib%2Ffreeswitch%2Frecordings%2Fa1.wav"}}"#;
        let js = from_freeswitch_json(json).unwrap();
        assert_eq!(js.queue.as_deref(), Some("support@default"));
        assert_eq!(js.direction, Some(Direction::Inbound));
        assert_eq!(csv.id, js.id);
        assert_eq!(csv.call_key(), js.call_key());
        assert_eq!(
            (csv.start_ms, csv.end_ms, csv.billsec),
            (js.start_ms, js.end_ms, js.billsec)
        );
        assert_eq!(csv.disposition, Disposition::Answered);
        assert_eq!(
            js.recording.as_deref(),
            Some("/var/lib/freeswitch/recordings/a1.wav")
        );
        let missed = r#"{"variables":{"uuid":"u2","start_epoch":"1796115600","end_epoch":"1796115630",
            "billsec":"0","duration":"30","hangup_cause":"ORIGINATOR_CANCEL"}}"#;
        assert_eq!(
            from_freeswitch_json(missed).unwrap().disposition,
            Disposition::NoAnswer
        );
        assert!(from_freeswitch_json("{")
            .unwrap_err()
            .starts_with("not JSON"));
    }

    #[test]
    fn a_custom_template_names_its_columns() {
        let template: Vec<Column> = serde_json::from_str(
            r#"["calldate","clid","src","dst","dcontext","channel","dstchannel","lastapp","lastdata",
                "duration","billsec","disposition","amaflags","accountcode","uniqueid","userfield","linkedid"]"#,
        )
        .unwrap();
        let line = br#""2026-12-01 09:00:00","""Bob"" <1002>","1002","3000","ext","SIP/1002-1","SIP/3000-2","Queue","support","60","55","ANSWERED","3","","1764579600.9","","1764579600.8""#;
        let r = from_fields(&csv_fields(line).unwrap(), &Template(template), &utc()).unwrap();
        assert_eq!(
            (r.id.as_str(), r.call_key()),
            ("1764579600.9", "1764579600.8")
        );
        assert_eq!(r.end_ms, r.start_ms + 60_000);
        assert_eq!(r.last_app, "Queue");
        assert_eq!(r.queue.as_deref(), Some("support"));
        // Named columns win: a queue and a direction column.
        let template: Vec<Column> =
            serde_json::from_str(r#"["start","uniqueid","billsec","queue","direction"]"#).unwrap();
        let line = br#""2026-12-01 09:00:00","u1","30","billing","outgoing""#;
        let r = from_fields(&csv_fields(line).unwrap(), &Template(template), &utc()).unwrap();
        assert_eq!(r.queue.as_deref(), Some("billing"));
        assert_eq!(r.direction, Some(Direction::Outbound));
    }
}
