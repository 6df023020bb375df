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
 * The rules of delivery, kept free of Moodle calls so that they can be tested with php-cli alone.
 *
 * Only a 2xx answer ends a delivery task. Every other outcome (no answer, a refusal because the secret was rotated,
 * the platform disabled or the URL mistyped, a 5xx) keeps the event queued with its event_uid and retries it with
 * a growing delay of at most MAX_DELAY seconds, however long it takes: an event is never dropped.
 *
 * @package    local_caseload
 * @copyright  2026 Caseload contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class delivery {

    /** @var int Attempts a failed task keeps: Moodle stops retrying an ad-hoc task whose attempts reach 0. */
    const ATTEMPTS = 12;

    /** @var int The longest wait between two attempts (Moodle's own limit is 24 hours). */
    const MAX_DELAY = 3600;

    /** @var string Format of the signed "Test connection" request. */
    const PING_SCHEMA = 'caseload.moodle-ping/1';

    /**
     * Whether Caseload's answer ends the task (2xx: accepted, duplicate or ignored).
     *
     * @param int $code HTTP status, 0 when there was no answer
     * @return bool
     */
    public static function accepted(int $code): bool {
        return $code >= 200 && $code < 300;
    }

    /**
     * The fail delay to leave on a failed task. Moodle doubles it after the failure (60 seconds the first time),
     * so leaving at most half of MAX_DELAY keeps the next wait at most MAX_DELAY.
     *
     * @param int $current The task's fail delay now (0 before the first failure)
     * @return int
     */
    public static function fail_delay(int $current): int {
        if ($current <= 0) {
            return 0;
        }
        return min($current, intdiv(self::MAX_DELAY, 2));
    }

    /**
     * HMAC-SHA256 of "timestamp.body" with the webhook secret (Caseload checks it in constant time).
     *
     * @param string $secret
     * @param string $timestamp Unix seconds
     * @param string $body
     * @return string The X-Caseload-Signature header value
     */
    public static function signature(string $secret, string $timestamp, string $body): string {
        return 'sha256=' . hash_hmac('sha256', $timestamp . '.' . $body, $secret);
    }

    /**
     * Why a delivery failed, in words an administrator can act on (Caseload's refusal title and reason).
     *
     * @param int $code HTTP status, 0 when there was no answer
     * @param string $body Caseload's answer
     * @param string $curlerror The transport error, if any
     * @return string
     */
    public static function reason(int $code, string $body, string $curlerror): string {
        if ($code === 0) {
            return 'Caseload could not be reached: ' . ($curlerror !== '' ? $curlerror : 'no answer');
        }
        $words = '';
        $data = json_decode($body, true);
        if (is_array($data)) {
            $title = isset($data['error']) && is_string($data['error']) ? $data['error'] : '';
            $reason = isset($data['reason']) && is_string($data['reason']) ? $data['reason'] : '';
            $words = trim($title . ($title !== '' && $reason !== '' ? ': ' : '') . $reason);
        }
        return self::clip('HTTP ' . $code . ($words !== '' ? ' - ' . $words : ''), 500);
    }

    /**
     * The body of a "Test connection" request.
     *
     * @param string $site This site's address
     * @param int $now Unix seconds
     * @return string
     */
    public static function ping_body(string $site, int $now): string {
        return json_encode(['schema' => self::PING_SCHEMA, 'site' => $site, 'sent_at' => $now],
            JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
    }

    /**
     * What Caseload answered a "Test connection", in words: [true, message] when it matched a platform.
     *
     * @param int $code
     * @param string $body
     * @param string $curlerror
     * @return array
     */
    public static function ping_result(int $code, string $body, string $curlerror): array {
        $data = json_decode($body, true);
        if (self::accepted($code) && is_array($data) && ($data['status'] ?? '') === 'ok'
                && isset($data['message']) && is_string($data['message'])) {
            return [true, self::clip($data['message'], 500)];
        }
        if (self::accepted($code)) {
            return [false, 'The address answered, but not as Caseload does: check that the webhook URL is the one '
                . 'Caseload showed for this site (/webhooks/moodle/<platform name>).'];
        }
        return [false, self::reason($code, $body, $curlerror)];
    }

    /**
     * Cut text to a length without splitting a UTF-8 character.
     *
     * @param string $text
     * @param int $length
     * @return string
     */
    private static function clip(string $text, int $length): string {
        if (strlen($text) <= $length) {
            return $text;
        }
        $cut = substr($text, 0, $length);
        while ($cut !== '' && (ord($cut[strlen($cut) - 1]) & 0xC0) === 0x80) {
            $cut = substr($cut, 0, -1);
        }
        if ($cut !== '' && ord($cut[strlen($cut) - 1]) >= 0xC0) {
            $cut = substr($cut, 0, -1);
        }
        return $cut . '…';
    }
}
