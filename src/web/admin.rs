//! `/admin`: the operators' console. The page itself is public and holds
//! no data; `admin.js` asks for the admin token in a form, keeps it in
//! `sessionStorage` (gone when the tab closes, never in a URL) and sends it
//! as `Authorization: Bearer` to the admin API: a dashboard of the last
//! hour (`GET /api/v1/stats`, charted with uPlot), history with its
//! filters and paging, an event's detail with its payload, error and
//! attempts, retry, and bulk replay of what the filters match (a dry-run
//! count first, then the job's progress, cancellable); the CRM's
//! automation rules with their fired, failed and skipped counts and recent
//! runs (when the CRM is mounted); the clusters of near-duplicate products
//! (`GET /api/v1/duplicates`); the messenger bots stored in the database
//! (`/api/v1/channels/bots`: list, add, disable and enable, rotate; hidden
//! when the Telegram provider is not mounted); each mounted provider's
//! status.

use maud::{Markup, html};

use super::shop::layout_with;

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
                h1 { "Dashboard" }
                button #logout type="button" { "Log out" }
            }
            p #stats-status.status role="status" aria-live="polite" {}
            div #charts.charts {}
            section #rules-panel hidden {
                h1 { "Automation rules" }
                p #rules-status.status role="status" aria-live="polite" {}
                div.table-wrap {
                    table #rules {
                        thead { tr { th { "Name" } th { "On" } th { "Triggers" } th { "Actions" }
                            th { "Fired" } th { "Failed" } th { "Skipped" } } }
                        tbody {}
                    }
                }
                section #rule-detail.panel hidden {
                    div.bar {
                        h2 #rule-title {}
                        button #close-rule type="button" { "Close" }
                    }
                    h3 { "Conditions and actions" }
                    pre #rule-spec {}
                    h3 { "Recent runs" }
                    div.table-wrap {
                        table #rule-runs {
                            thead { tr { th { "When" } th { "Event" } th { "Outcome" } th { "Error" } } }
                            tbody {}
                        }
                    }
                }
            }
            section #duplicates-panel {
                h1 { "Near-duplicates" }
                p #duplicates-status.status role="status" aria-live="polite" {}
                div.table-wrap {
                    table #duplicates {
                        thead { tr { th { "Products" } th { "Pairs" } th { "Best score" } } }
                        tbody {}
                    }
                }
            }
            section #bots-panel hidden {
                h1 { "Messenger bots" }
                p #bots-status.status role="status" aria-live="polite" {}
                div.table-wrap {
                    table #bots {
                        thead { tr { th { "Name" } th { "Kind" } th { "Bot / number" } th { "On" }
                            th { "Secret" } th { "Updated" } th { "" } } }
                        tbody {}
                    }
                }
                form #bot-form.filters {
                    label { "Kind "
                        select name="kind" {
                            option value="telegram" { "Telegram" }
                            option value="whatsapp" { "WhatsApp" }
                        }
                    }
                    label { "Business " input name="name" size="14" required; }
                    label { "Token " input name="token" type="password" autocomplete="off" size="20" required; }
                    label { "Secret " input name="secret" type="password" autocomplete="off" size="14"; }
                    label { "Phone number id " input name="phone_number_id" size="14" placeholder="WhatsApp only"; }
                    button type="submit" { "Add bot" }
                }
                form #rotate-form.filters hidden {
                    h3 #rotate-title {}
                    label { "New token " input name="token" type="password" autocomplete="off" size="20"; }
                    label { "New secret " input name="secret" type="password" autocomplete="off" size="14"; }
                    button type="submit" { "Rotate" }
                    button #rotate-cancel type="button" { "Cancel" }
                }
            }
            section #providers-panel {
                h1 { "Providers" }
                dl #providers {}
            }
            h1 { "Events" }
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
                label { "Entity " input name="entity_type" size="8" placeholder="lead"; }
                label { "Subtype " input name="event_subtype" size="16" placeholder="lead_status_changed"; }
                label { "Organisation " input name="org" size="8"; }
                label { "From " input name="start_date" type="date"; }
                label { "To " input name="end_date" type="date"; }
                label { "Per page "
                    select name="limit" { option { "20" } option { "50" } option { "100" } }
                }
                button type="submit" { "Apply" }
            }
            p #list-status.status role="status" aria-live="polite" {}
            div.replay {
                button #replay-count type="button" { "Replay the events these filters match…" }
                span #replay-status.status role="status" aria-live="polite" {}
                button #replay-start type="button" hidden { "Replay them" }
                button #replay-cancel type="button" hidden { "Cancel the replay" }
            }
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
                h3 { "Attempts" }
                div.table-wrap {
                    table #attempts {
                        thead { tr { th { "Started" } th { "Ended" } th { "Kind" } th { "Outcome" } th { "Error" } } }
                        tbody {}
                    }
                }
                h3 { "Payload" }
                pre #detail-payload {}
                button #retry type="button" { "Retry this event" }
                p #retry-status.status role="status" aria-live="polite" {}
            }
        }
    };
    layout_with(
        "Vitrine admin",
        &["uPlot.iife.min.js", "admin.js"],
        &["uPlot.min.css"],
        body,
    )
}
