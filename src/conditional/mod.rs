//! Conditional requests: the layers that answer them, and the entity tags, HTTP dates and
//! precondition evaluation they are built from.
//!
//! Two layers let clients and caches revalidate instead of downloading again (the conditional
//! requests of RFC 9110):
//!
//! | You want to… | Use | Django counterpart |
//! |---|---|---|
//! | answer `304`/`412` from validators you compute cheaply (a version, an `updated_at`), without running the handler | [`condition`] → [`ConditionLayer`] | `@condition`, `@etag`, `@last_modified` |
//! | give every response an `ETag` from its body and answer `304` | [`ConditionalGetLayer`] | `ConditionalGetMiddleware` |
//!
//! The pure parts parse the validators a client sends, compare them with the resource's current
//! ones, and say whether to go on, answer `304 Not Modified` or `412 Precondition Failed`:
//!
//! | You want to… | Use | Django counterpart |
//! |---|---|---|
//! | make an `ETag` from a computed value | [`EntityTag::quote`], [`EntityTag::strong`], [`EntityTag::weak`] | `quote_etag` |
//! | read `If-Match` / `If-None-Match` | [`parse_etag_list`] | `parse_etags` |
//! | read or write an HTTP date | [`parse_http_date`], [`parse_http_date_at`], [`fmt_http_date`] | `parse_http_date_safe`, `http_date` |
//! | decide between 200, 304 and 412 | [`evaluate_preconditions`] | `get_conditional_response` |
//! | build the headers of a 304 | [`not_modified_headers`] | `_not_modified` |
//!
//! See the [client-side caching chapter](crate::docs::headers) for a guided tour.

pub(crate) mod body;
mod condition;
mod etag;
mod get;
mod precondition;

pub use crate::headers::{fmt_http_date, parse_http_date, parse_http_date_at};
pub use body::ConditionalBody;
pub use condition::{ConditionFuture, ConditionLayer, ConditionService, condition};
pub use etag::{EntityTag, EntityTagList, InvalidEntityTag, parse_etag_list};
pub use get::{
    ConditionalGetFuture, ConditionalGetLayer, ConditionalGetService, DEFAULT_MAX_BODY_SIZE,
};
pub(crate) use precondition::evaluate_for_existing;
pub use precondition::{Precondition, evaluate_preconditions, not_modified_headers};
