-- Shadow mode (issue #19 item 4): what the filter would have done on routes in shadow, counted
-- per UTC day, route, finding (would_challenge, would_forfeit) and trigger ('' for none). One
-- row per key however many requests a flood sends; rows older than the retention go as new
-- counts arrive.
CREATE TABLE shadow_findings (
    day BIGINT NOT NULL,
    route_id TEXT NOT NULL,
    finding TEXT NOT NULL,
    trigger TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (day, route_id, finding, trigger)
);
