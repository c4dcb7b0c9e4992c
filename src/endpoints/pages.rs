//! The landing page.

use crate::context::Ctx;
use crate::http::{Request, Response};
use crate::session;
use crate::store::Driver;
use crate::templates;

pub async fn home<D: Driver>(ctx: &Ctx<'_, D>, req: &Request) -> Response {
    match session::current(ctx, req).await {
        Ok(Some(s)) => Response::html(200, templates::home(Some((&s.user.email, &s.csrf)))),
        Ok(None) => Response::html(200, templates::home(None)),
        Err(e) => crate::templates::unavailable_page(e),
    }
}
