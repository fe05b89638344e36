//! Registration states on the service API: the record DPS keeps of each device's last
//! registration (`GET` / `DELETE /registrations/{registrationId}`, the DELETE under ETags),
//! and the states of the devices that registered through an enrollment group
//! (`POST /registrations/{enrollmentGroupId}/query`, paged like every query).

use super::{bare_etag, if_match_allows, precondition_failed, query_page, Core, Reply, Request};

fn registration_not_found() -> Reply {
    Reply::error(404, 404202, "Registration not found")
}

impl Core {
    /// `/registrations/...` (`rest` after `registrations`); `None` when no route matches.
    pub(super) fn registration_states(
        &mut self,
        method: &str,
        rest: &[&str],
        req: &Request,
    ) -> Option<Reply> {
        Some(match (method, rest) {
            ("GET", [id]) => match self.persisted.registrations.get(*id) {
                Some(r) => {
                    Reply::json(200, r).with_header("etag", format!("\"{}\"", bare_etag(&r.etag)))
                }
                None => registration_not_found(),
            },
            ("DELETE", [id]) => self.delete_registration(id, req.header("if-match")),
            ("POST", [group_id, "query"]) => {
                if !self.persisted.enrollment_groups.contains_key(*group_id) {
                    return Some(Reply::error(404, 404204, "Enrollment group not found"));
                }
                let p = &self.persisted;
                let states: Vec<_> = p
                    .registrations
                    .values()
                    .filter(|r| {
                        p.group_registrations
                            .get(&r.registration_id)
                            .map(String::as_str)
                            == Some(*group_id)
                    })
                    .collect();
                query_page(req, states.len(), |start, n| {
                    states.into_iter().skip(start).take(n).collect()
                })
            }
            _ => return None,
        })
    }

    fn delete_registration(&mut self, id: &str, if_match: Option<&str>) -> Reply {
        let Some(r) = self.persisted.registrations.get(id) else {
            return registration_not_found();
        };
        if !if_match_allows(if_match, Some(&r.etag)) {
            return precondition_failed();
        }
        self.persisted.registrations.remove(id);
        self.persisted.group_registrations.remove(id);
        self.save().err().unwrap_or(Reply::empty(204))
    }
}
