//! Hooks a compatibility profile plugs into the core; the wiring picks one per request, the core never names a profile.

use std::borrow::Cow;

use super::Ctx;
use crate::config::Config;
use crate::http::{Request, Response};
use crate::store::Driver;

type Fut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// Where the core lets a profile change a wire format. Each default is the
/// core's own behaviour, so [`Core`] overrides nothing.
pub trait Profile<D: Driver> {
    /// The route a request path is served as.
    fn route_path<'p>(&self, _config: &Config, path: &'p str) -> &'p str {
        path
    }

    /// A `response_type` the profile accepts as the code flow.
    fn is_response_type(&self, _config: &Config, _response_type: &str) -> bool {
        false
    }

    /// The authorize error page's text for an unregistered redirect URI.
    fn redirect_mismatch<'a>(&self, _config: &Config, core: &'a str) -> &'a str {
        core
    }

    /// `error_description` sent back with `access_denied` after Deny.
    fn denied<'a>(&self, _config: &Config, core: &'a str) -> &'a str {
        core
    }

    /// The 403 for a missing scope.
    fn forbidden(&self, resp: Response) -> Response {
        resp
    }

    /// A presented token as the core knows it (revocation, introspection).
    fn unwrapped<'t>(&self, _config: &Config, token: &'t str) -> Cow<'t, str> {
        Cow::Borrowed(token)
    }

    /// A revocation request in the profile's own form, answered before the
    /// core's; `None`: not that form (the core decides).
    fn self_revocation<'a>(&'a self, _ctx: &'a Ctx<'a, D>, _req: &'a Request) -> Fut<'a, Option<Response>> {
        Box::pin(async { None })
    }

    /// A token request in the profile's own form, answered before the core's
    /// grants; `None`: not that form (the core's grants decide).
    fn token<'a>(&'a self, _ctx: &'a Ctx<'a, D>, _req: &'a Request) -> Fut<'a, Option<Response>> {
        Box::pin(async { None })
    }
}

/// The core's behaviour: no profile.
pub struct Core;

impl<D: Driver> Profile<D> for Core {}
