//! The media core: units and tracks, the Stream fan-out, paths and the PathManager.
//! Protocols convert to and from units here; no protocol talks to another directly.

mod params;
mod path;
mod path_manager;
mod stream;
mod track;
mod unit;

pub use path::{Path, PathError, Publisher, Reader};
pub use path_manager::PathManager;
pub use stream::{ReadEnd, Stream, StreamConfig, StreamItem, StreamReader, StreamStats, UnitEntry};
pub use track::{Codec, OtherCodec, Track};
pub use unit::{Payload, Unit};
