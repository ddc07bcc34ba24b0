//! The measurements behind `swapaccel bench`: each backend over a corpus, page by page, as a
//! swap daemon would call it.
//!
//! Ratios are total raw bytes over total stored bytes, an incompressible page counting as a
//! full page. Two figures are kept: over every page compressed by the codec, and over the
//! non-zero pages alone (the figure `shared/corpus/README.md` quotes; a pool stores zero pages
//! without compressing them).

mod measure;
mod report;
mod stats;

pub use measure::{measure, Backend, BackendResult, MeasureError};
pub use report::{render_table, CorpusSummary};
pub use stats::Percentiles;
