<?php
// This file is part of local_caseload, the Caseload companion plugin for Moodle.
//
// local_caseload is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// local_caseload is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <http://www.gnu.org/licenses/>.

namespace local_caseload;

/**
 * Whether deliveries to Caseload are failing, kept in the plugin's config so that the settings page, the admin
 * notifications and the System status report can say so.
 *
 * @package    local_caseload
 * @copyright  2026 Caseload contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class status {

    /**
     * A delivery was accepted: the failing state ends.
     *
     * @return void
     */
    public static function record_success(): void {
        set_config('lastsuccess', time(), 'local_caseload');
        if (get_config('local_caseload', 'failingsince')) {
            unset_config('failingsince', 'local_caseload');
            unset_config('lastfailure', 'local_caseload');
            unset_config('lastfailureat', 'local_caseload');
        }
    }

    /**
     * A delivery failed; the event stays queued.
     *
     * @param string $reason Caseload's answer in words (never the payload)
     * @return void
     */
    public static function record_failure(string $reason): void {
        $now = time();
        if (!get_config('local_caseload', 'failingsince')) {
            set_config('failingsince', $now, 'local_caseload');
        }
        set_config('lastfailure', $reason, 'local_caseload');
        set_config('lastfailureat', $now, 'local_caseload');
    }

    /**
     * The failing state, or null when the last delivery succeeded.
     *
     * @return \stdClass|null With since, reason and at (Unix seconds)
     */
    public static function failing(): ?\stdClass {
        $since = (int)get_config('local_caseload', 'failingsince');
        if (!$since) {
            return null;
        }
        return (object)[
            'since' => $since,
            'reason' => (string)get_config('local_caseload', 'lastfailure'),
            'at' => (int)get_config('local_caseload', 'lastfailureat'),
        ];
    }

    /**
     * How many events are waiting to be delivered.
     *
     * @return int
     */
    public static function queued(): int {
        global $DB;
        return $DB->count_records('task_adhoc', ['classname' => '\\' . task\deliver_event::class]);
    }

    /**
     * The failing state in words for an administrator, or '' when deliveries work.
     *
     * @return string
     */
    public static function failing_message(): string {
        $failing = self::failing();
        if ($failing === null) {
            return '';
        }
        return get_string('failingnotice', 'local_caseload', (object)[
            'since' => userdate($failing->since),
            'reason' => $failing->reason,
            'queued' => self::queued(),
        ]);
    }
}
