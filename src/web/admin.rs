//! `/admin`: the operators' console. The page itself is public and holds
//! no data; `admin.js` asks for the admin token in a form, keeps it in
//! `sessionStorage` (gone when the tab closes, never in a URL) and sends it
//! as `Authorization: Bearer` to the admin event API: history with its
//! filters and paging, an event's detail with its payload and error, and
//! retry.

use maud::{Markup, html};

use super::shop::layout;

pub async fn page() -> Markup {
    let body = html! {
        section #login.panel {
            h1 { "Admin console" }
            form #login-form {
                label { "Admin token "
                    input #token type="password" name="token" autocomplete="current-password" required;
                }
                button type="submit" { "Log in" }
            }
            p #login-error.problem role="alert" hidden {}
        }
        section #console hidden {
            div.bar {
                h1 { "Events" }
                button #logout type="button" { "Log out" }
            }
            form #event-filters.filters {
                label { "Status "
                    select name="status" {
                        option value="" { "Any" }
                        @for s in ["pending", "processing", "completed", "failed", "retrying"] {
                            option value=(s) { (s) }
                        }
                    }
                }
                label { "Provider " input name="provider" size="8"; }
                label { "Type " input name="event_type" size="14" placeholder="product.created"; }
                label { "From " input name="start_date" type="date"; }
                label { "To " input name="end_date" type="date"; }
                label { "Per page "
                    select name="limit" { option { "20" } option { "50" } option { "100" } }
                }
                button type="submit" { "Apply" }
            }
            p #list-status.status role="status" aria-live="polite" {}
            div.table-wrap {
                table #events {
                    thead { tr { th { "Created" } th { "Provider" } th { "Type" } th { "Entity" }
                        th { "Status" } th { "Tries" } th { "Error" } } }
                    tbody {}
                }
            }
            div.pager {
                button #prev type="button" { "← Newer" }
                span #page-info {}
                button #next type="button" { "Older →" }
            }
            section #detail.panel hidden {
                div.bar {
                    h2 #detail-title {}
                    button #close-detail type="button" { "Close" }
                }
                dl #detail-fields {}
                h3 { "Error" }
                pre #detail-error {}
                h3 { "Payload" }
                pre #detail-payload {}
                button #retry type="button" { "Retry this event" }
                p #retry-status.status role="status" aria-live="polite" {}
            }
        }
    };
    layout("Vitrine admin", Some("admin.js"), body)
}
