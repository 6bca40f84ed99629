//! A path's recorded segments on disk: which files its `recordPath` made (nothing else
//! is opened), how long each one is, and its units, read one part at a time so that
//! an hour-long file is never held in memory. Blocking I/O: run it off the runtime.

use crate::config::record::RecordFormat;
use crate::config::PathConf;
use crate::core::{Codec, Track, Unit};
use crate::format::fmp4::demux::{parse_init, InitTrack};
use crate::format::mpegts::demux::{Pes, TsDemuxer};
use crate::format::mpegts::PACKET;
use crate::format::segment::{self, TS_WRAP};
use crate::record::pattern::RecordPattern;
use bytes::Bytes;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Largest box read into memory (a part is at most `recordMaxPartSize`, 50M by default).
const MAX_BOX: u64 = 256 << 20;
/// MPEG-TS is read in chunks of this many packets.
const TS_CHUNK: usize = PACKET * 2048;
/// How much of a TS file's end is read for its last timestamp.
const TS_TAIL: u64 = (PACKET * 8192) as u64;

#[derive(Debug, Clone)]
pub struct SegmentFile {
    pub file: PathBuf,
    pub start: SystemTime,
    pub format: RecordFormat,
}

/// The path's segment files, oldest first.
pub fn find(conf: &PathConf, path: &str) -> Vec<SegmentFile> {
    let pattern = RecordPattern::new(&conf.record_path, conf.record_format.extension());
    let files = crate::record::pattern::files_under(&pattern.base_dir(Some(path)), 16);
    let mut out: Vec<SegmentFile> = files
        .into_iter()
        .filter_map(|f| {
            let (_, start) = pattern.parse(Some(path), f.to_str()?)?;
            Some(SegmentFile {
                file: f,
                start,
                format: conf.record_format,
            })
        })
        .collect();
    out.sort_by_key(|s| s.start);
    out
}

/// What `/list` needs of a segment: its media's length and what its tracks are (spans
/// join only segments of the same tracks).
#[derive(Debug, Clone, PartialEq)]
pub struct Probed {
    pub duration: Duration,
    pub tracks: Vec<Track>,
}

fn io_err(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// (type, body length) of the next box; `None` at the end or on a box cut short.
fn box_header(f: &mut File) -> std::io::Result<Option<([u8; 4], u64, u64)>> {
    let mut h = [0u8; 8];
    if read_full(f, &mut h)? < 8 {
        return Ok(None);
    }
    let size = u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
    let typ = [h[4], h[5], h[6], h[7]];
    let (size, header) = match size {
        1 => {
            let mut l = [0u8; 8];
            if read_full(f, &mut l)? < 8 {
                return Ok(None);
            }
            (u64::from_be_bytes(l), 16)
        }
        0 => {
            let pos = f.stream_position()?;
            (f.metadata()?.len() - pos + 8, 8)
        }
        s => (s, 8),
    };
    if size < header {
        return Err(io_err("bad box size"));
    }
    Ok(Some((typ, size - header, header)))
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A whole box (header included); `None` at the end or when cut short (a crash).
fn read_box(f: &mut File, typ: [u8; 4], len: u64, header: u64) -> std::io::Result<Option<Vec<u8>>> {
    if len > MAX_BOX {
        return Err(io_err("box too large"));
    }
    let mut buf = vec![0u8; (header + len) as usize];
    let total = header + len;
    let size_bytes: Vec<u8> = if header == 16 {
        let mut v = 1u32.to_be_bytes().to_vec();
        v.extend_from_slice(&typ);
        v.extend_from_slice(&total.to_be_bytes());
        v
    } else {
        let mut v = (total as u32).to_be_bytes().to_vec();
        v.extend_from_slice(&typ);
        v
    };
    buf[..size_bytes.len()].copy_from_slice(&size_bytes);
    if read_full(f, &mut buf[header as usize..])? < len as usize {
        return Ok(None);
    }
    Ok(Some(buf))
}

/// Whether a video track's parameter sets are known (what an init section needs).
fn has_params(t: &Track) -> bool {
    match &t.codec {
        Codec::H264 { sps, pps } => sps.is_some() && pps.is_some(),
        Codec::H265 { vps, sps, pps } => vps.is_some() && sps.is_some() && pps.is_some(),
        _ => true,
    }
}

/// The track whose first frame a file's start time is: video if any.
pub fn key_track(tracks: &[Track]) -> usize {
    tracks.iter().position(|t| t.codec.is_video()).unwrap_or(0)
}

enum Reader {
    Fmp4 {
        init: Vec<InitTrack>,
    },
    Ts {
        demux: TsDemuxer,
        pids: HashMap<u32, usize>,
        last: HashMap<u16, i64>,
        held: Vec<Pes>,
        done: bool,
    },
}

/// A segment's units in order, one part (or chunk) at a time.
pub struct SegmentUnits {
    file: File,
    tracks: Vec<Track>,
    reader: Reader,
    /// Seconds of the key track's first frame: the file's start time.
    origin: Option<f64>,
}

fn unwrap(last: &mut HashMap<u16, i64>, pid: u16, ts: u64) -> i64 {
    let ts = ts as i64;
    let t = match last.get(&pid) {
        Some(p) => ts + (p - ts + TS_WRAP / 2).div_euclid(TS_WRAP) * TS_WRAP,
        None => ts,
    };
    last.insert(pid, t);
    t
}

impl SegmentUnits {
    /// Opens a segment and reads its header (fMP4 init, or TS up to the first tracks).
    pub fn open(seg: &SegmentFile) -> std::io::Result<SegmentUnits> {
        let mut file = File::open(&seg.file)?;
        match seg.format {
            RecordFormat::Fmp4 => loop {
                let Some((typ, len, header)) = box_header(&mut file)? else {
                    return Err(io_err("no init section"));
                };
                if &typ != b"moov" {
                    file.seek(SeekFrom::Current(len as i64))?;
                    continue;
                }
                let moov = read_box(&mut file, typ, len, header)?
                    .ok_or_else(|| io_err("moov cut short"))?;
                let init = parse_init(&moov).map_err(|e| io_err(e.to_string()))?;
                return Ok(SegmentUnits {
                    file,
                    tracks: init.iter().map(|t| t.track.clone()).collect(),
                    reader: Reader::Fmp4 { init },
                    origin: None,
                });
            },
            RecordFormat::Mpegts => {
                let mut demux = TsDemuxer::default();
                let mut held = Vec::new();
                let mut buf = vec![0u8; TS_CHUNK];
                // The tracks' parameter sets ride with the first keyframe.
                for _ in 0..8 {
                    let n = read_full(&mut file, &mut buf)?;
                    demux
                        .push(&buf[..n - n % PACKET], &mut held)
                        .map_err(|e| io_err(e.to_string()))?;
                    if n < buf.len() {
                        demux.flush(&mut held);
                        break;
                    }
                    if segment::ts_tracks(&held).is_some_and(|(t, _)| t.iter().all(has_params)) {
                        break;
                    }
                }
                let (tracks, pids) =
                    segment::ts_tracks(&held).ok_or_else(|| io_err("no tracks"))?;
                Ok(SegmentUnits {
                    file,
                    tracks,
                    reader: Reader::Ts {
                        demux,
                        pids: pids.into_iter().map(|(k, v)| (u32::from(k), v)).collect(),
                        last: HashMap::new(),
                        held,
                        done: false,
                    },
                    origin: None,
                })
            }
        }
    }

    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// The next units, each with its decode time in seconds since the file's start;
    /// `false` at the end (a part cut short by a crash ends it too).
    pub fn next(&mut self, out: &mut Vec<(f64, Unit)>) -> std::io::Result<bool> {
        let frames;
        let index: HashMap<u32, usize> = match &mut self.reader {
            Reader::Fmp4 { init } => {
                let mut got = None;
                while got.is_none() {
                    let Some((typ, len, header)) = box_header(&mut self.file)? else {
                        return Ok(false);
                    };
                    if &typ != b"moof" {
                        self.file.seek(SeekFrom::Current(len as i64))?;
                        continue;
                    }
                    let Some(mut moof) = read_box(&mut self.file, typ, len, header)? else {
                        return Ok(false);
                    };
                    let Some((t2, l2, h2)) = box_header(&mut self.file)? else {
                        return Ok(false);
                    };
                    if &t2 != b"mdat" {
                        return Err(io_err("moof without its mdat"));
                    }
                    let Some(mdat) = read_box(&mut self.file, t2, l2, h2)? else {
                        return Ok(false);
                    };
                    moof.extend_from_slice(&mdat);
                    got = Some(Bytes::from(moof));
                }
                let data = got.unwrap_or_default();
                frames = segment::fmp4_frames(init, &data).map_err(|e| io_err(e.to_string()))?;
                init.iter().enumerate().map(|(i, t)| (t.id, i)).collect()
            }
            Reader::Ts {
                demux,
                pids,
                last,
                held,
                done,
            } => {
                if held.is_empty() {
                    if *done {
                        return Ok(false);
                    }
                    let mut buf = vec![0u8; TS_CHUNK];
                    let n = read_full(&mut self.file, &mut buf)?;
                    demux
                        .push(&buf[..n - n % PACKET], held)
                        .map_err(|e| io_err(e.to_string()))?;
                    if n < buf.len() {
                        demux.flush(held);
                        *done = true;
                    }
                }
                let pes = std::mem::take(held);
                frames = segment::ts_frames(pes, |pid, t| unwrap(last, pid, t));
                pids.clone()
            }
        };
        let key = key_track(&self.tracks);
        let mut units = Vec::with_capacity(frames.len());
        for f in frames {
            let Some(&track) = index.get(&f.key) else {
                continue;
            };
            let clock = i64::from(self.tracks[track].clock_rate.max(1));
            let t = f.dts;
            f.into_units(track, t, clock, |u| units.push(u));
        }
        if self.origin.is_none() {
            let first = units
                .iter()
                .find(|u| u.track == key)
                .or(units.first())
                .map(|u| u.dts as f64 / f64::from(self.tracks[u.track].clock_rate.max(1)));
            self.origin = first;
        }
        let origin = self.origin.unwrap_or(0.0);
        for u in units {
            let secs = u.dts as f64 / f64::from(self.tracks[u.track].clock_rate.max(1));
            out.push((secs - origin, u));
        }
        Ok(true)
    }
}

/// A segment's length and tracks, without reading its media (fMP4: the `moof`s only;
/// MPEG-TS: its first and last timestamps).
pub fn probe(seg: &SegmentFile) -> std::io::Result<Probed> {
    let mut units = SegmentUnits::open(seg)?;
    let tracks = units.tracks.clone();
    let key = key_track(&tracks);
    let clock = f64::from(tracks[key].clock_rate.max(1));
    let (first, last) = match &units.reader {
        Reader::Fmp4 { init } => {
            let id = init[key].id;
            let (mut first, mut end) = (None::<u64>, 0u64);
            while let Some((typ, len, header)) = box_header(&mut units.file)? {
                if &typ != b"moof" {
                    units.file.seek(SeekFrom::Current(len as i64))?;
                    continue;
                }
                let Some(moof) = read_box(&mut units.file, typ, len, header)? else {
                    break;
                };
                let moof = <mp4_atom::Moof as mp4_atom::Decode>::decode(&mut moof.as_slice())
                    .map_err(|e| io_err(e.to_string()))?;
                for traf in moof.traf.iter().filter(|t| t.tfhd.track_id == id) {
                    let base = traf.tfdt.as_ref().map_or(end, |t| t.base_media_decode_time);
                    let default = traf.tfhd.default_sample_duration.unwrap_or(0);
                    let d: u64 = traf
                        .trun
                        .iter()
                        .map(|r| match &r.samples {
                            mp4_atom::TrunSamples::Explicit(e) => e
                                .iter()
                                .map(|s| u64::from(s.duration.unwrap_or(default)))
                                .sum::<u64>(),
                            _ => 0,
                        })
                        .sum();
                    first.get_or_insert(base);
                    end = end.max(base + d);
                }
            }
            let f = first.unwrap_or(0) as f64 / clock;
            (f, end as f64 / clock)
        }
        Reader::Ts { demux, held, .. } => {
            let pid = demux
                .streams()
                .into_iter()
                .find(|(p, _)| {
                    segment::ts_tracks(held).is_some_and(|(_, m)| m.get(p) == Some(&key))
                })
                .map(|(p, _)| p);
            let dts = |p: &Pes| p.dts.or(p.pts);
            let first = held.iter().filter(|p| Some(p.pid) == pid).find_map(dts);
            let streams = demux.streams();
            let size = units.file.metadata()?.len();
            let from = size.saturating_sub(TS_TAIL) / PACKET as u64 * PACKET as u64;
            units.file.seek(SeekFrom::Start(from))?;
            let mut tail = Vec::new();
            units.file.read_to_end(&mut tail)?;
            let mut d = TsDemuxer::with_streams(&streams);
            let mut pes = Vec::new();
            let n = tail.len() - tail.len() % PACKET;
            let _ = d.push(&tail[..n], &mut pes);
            d.flush(&mut pes);
            let times: Vec<u64> = pes
                .iter()
                .filter(|p| Some(p.pid) == pid)
                .filter_map(dts)
                .collect();
            let step = match times.as_slice() {
                [.., a, b] if b > a => b - a,
                _ => 0,
            };
            match (first, times.last()) {
                (Some(f), Some(&l)) => {
                    let l = l + step;
                    let span = (l as i64 - f as i64).rem_euclid(TS_WRAP);
                    (0.0, span as f64 / 90_000.0)
                }
                _ => (0.0, 0.0),
            }
        }
    };
    Ok(Probed {
        duration: Duration::try_from_secs_f64((last - first).max(0.0)).unwrap_or_default(),
        tracks,
    })
}
