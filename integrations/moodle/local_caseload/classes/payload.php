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
 * Builds the JSON Caseload expects (format caseload.moodle-event/1) from a Moodle event.
 *
 * Enrolment and role events carry a snapshot: the user's enrolment status in the course (active, suspended or
 * none) and the archetypes of the roles they hold there after the event. Caseload applies snapshots in the order
 * of their event_time, so a late retry never undoes a newer change.
 *
 * @package    local_caseload
 * @copyright  2026 Caseload contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class payload {

    /** @var string The format name Caseload checks. */
    const SCHEMA = 'caseload.moodle-event/1';

    /**
     * The payload for an event, or null when the event is not about a course roster (a role in a category).
     *
     * @param \core\event\base $event
     * @return array|null
     */
    public static function from_event(\core\event\base $event): ?array {
        global $CFG;
        $name = $event->eventname;
        $data = [
            'schema' => self::SCHEMA,
            'event_uid' => \core\uuid::generate(),
            'event_name' => $name,
            'event_time' => self::iso_time(microtime(true)),
            'site' => $CFG->wwwroot,
        ];
        switch ($name) {
            case '\core\event\course_deleted':
                $data['course'] = ['id' => (string)$event->objectid];
                return $data;
            case '\core\event\user_updated':
            case '\core\event\user_deleted':
                $data['user'] = self::user($event->objectid, $event);
                return $data;
            case '\core\event\role_assigned':
            case '\core\event\role_unassigned':
                if ($event->contextlevel != CONTEXT_COURSE) {
                    return null;
                }
                $role = self::role($event->objectid);
                $data['role'] = $role;
                break;
            case '\core\event\user_enrolment_created':
            case '\core\event\user_enrolment_updated':
            case '\core\event\user_enrolment_deleted':
                break;
            case '\core\event\course_module_created':
            case '\core\event\course_module_updated':
                // Only quizzes; the payload names the course and the quiz, nobody's data.
                if (($event->other['modulename'] ?? '') !== 'quiz') {
                    return null;
                }
                $data['course'] = ['id' => (string)$event->courseid];
                $data['quiz'] = ['id' => (string)($event->other['instanceid'] ?? '')];
                return $data;
            case '\core\event\course_restored':
                // Restore, import and copy fire no per-module created events.
                $data['course'] = ['id' => (string)$event->objectid];
                return $data;
            case '\mod_quiz\event\user_override_created':
            case '\mod_quiz\event\user_override_updated':
            case '\mod_quiz\event\user_override_deleted':
                $data['course'] = ['id' => (string)$event->courseid];
                $data['quiz'] = ['id' => (string)($event->other['quizid'] ?? '')];
                return $data;
            default:
                return null;
        }
        $courseid = (int)$event->courseid;
        $userid = (int)$event->relateduserid;
        if (!$courseid || !$userid) {
            return null;
        }
        $course = get_course($courseid);
        $data['course'] = [
            'id' => (string)$course->id,
            'shortname' => $course->shortname,
            'fullname' => $course->fullname,
            'idnumber' => (string)$course->idnumber,
        ];
        $data['user'] = self::user($userid, $event);
        $data['enrolment'] = self::enrolment($courseid, $userid);
        return $data;
    }

    /**
     * An ISO 8601 UTC time with microseconds.
     *
     * @param float $seconds Unix time
     * @return string
     */
    public static function iso_time(float $seconds): string {
        $whole = (int)floor($seconds);
        $micro = (int)round(($seconds - $whole) * 1000000);
        if ($micro >= 1000000) {
            $whole++;
            $micro -= 1000000;
        }
        return gmdate('Y-m-d\TH:i:s', $whole) . sprintf('.%06dZ', $micro);
    }

    /**
     * What Caseload needs to know about a user.
     *
     * @param int $userid
     * @param \core\event\base $event
     * @return array
     */
    private static function user(int $userid, \core\event\base $event): array {
        global $DB;
        $fields = 'id, firstname, lastname, email, idnumber';
        $user = $DB->get_record('user', ['id' => $userid], $fields);
        if (!$user && $event->eventname === '\core\event\user_deleted') {
            $user = (object)['id' => $userid, 'firstname' => '', 'lastname' => '', 'email' => '', 'idnumber' => ''];
        }
        if (!$user) {
            throw new \coding_exception('user ' . $userid . ' not found');
        }
        return [
            'id' => (string)$user->id,
            'firstname' => (string)$user->firstname,
            'lastname' => (string)$user->lastname,
            'email' => (string)$user->email,
            'idnumber' => (string)$user->idnumber,
        ];
    }

    /**
     * A role's short name and archetype.
     *
     * @param int $roleid
     * @return array
     */
    private static function role(int $roleid): array {
        global $DB;
        $role = $DB->get_record('role', ['id' => $roleid], 'id, shortname, archetype');
        return [
            'shortname' => $role ? (string)$role->shortname : '',
            'archetype' => $role ? (string)$role->archetype : '',
        ];
    }

    /**
     * The user's enrolment status in the course and the archetypes of their roles there, now.
     *
     * @param int $courseid
     * @param int $userid
     * @return array
     */
    private static function enrolment(int $courseid, int $userid): array {
        global $DB;
        $now = time();
        $sql = "SELECT ue.id, ue.status AS uestatus, ue.timestart, ue.timeend, e.status AS estatus
                  FROM {user_enrolments} ue
                  JOIN {enrol} e ON e.id = ue.enrolid
                 WHERE e.courseid = :courseid AND ue.userid = :userid";
        $rows = $DB->get_records_sql($sql, ['courseid' => $courseid, 'userid' => $userid]);
        $status = 'none';
        foreach ($rows as $row) {
            $status = 'suspended';
            if ((int)$row->uestatus === ENROL_USER_ACTIVE && (int)$row->estatus === ENROL_INSTANCE_ENABLED
                    && (int)$row->timestart <= $now && ((int)$row->timeend === 0 || (int)$row->timeend > $now)) {
                $status = 'active';
                break;
            }
        }
        $context = \context_course::instance($courseid);
        $archetypes = [];
        foreach (get_user_roles($context, $userid, false) as $assignment) {
            $role = self::role((int)$assignment->roleid);
            if ($role['archetype'] !== '') {
                $archetypes[$role['archetype']] = true;
            }
        }
        return ['status' => $status, 'roles' => array_keys($archetypes)];
    }
}
