//! Why decoding the compiled form refused something, in words. The decoder (`postcard`)
//! keeps only that a custom error happened, not its message; the engine's own refusals
//! (keys out of order, say) are kept here for the duration of a decode so that the log line
//! can name them.

use std::cell::RefCell;
use std::fmt::Display;

thread_local! {
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A decode error saying `message`, which [`take`] returns afterwards.
pub(crate) fn refuse<E: serde::de::Error>(message: impl Display) -> E {
    let text = message.to_string();
    LAST.with(|l| *l.borrow_mut() = Some(text.clone()));
    E::custom(text)
}

/// The last refusal's message, cleared.
pub(crate) fn take() -> Option<String> {
    LAST.with(|l| l.borrow_mut().take())
}
