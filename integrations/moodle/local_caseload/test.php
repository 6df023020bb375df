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

/**
 * "Test connection": sends a signed test to Caseload and shows its answer in words (which platform the URL and
 * secret matched, or why Caseload refused). Nothing is stored in Caseload.
 *
 * @package    local_caseload
 * @copyright  2026 Caseload contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/../../config.php');
require_once($CFG->libdir . '/adminlib.php');

admin_externalpage_setup('local_caseload_test');
$run = optional_param('run', 0, PARAM_BOOL);
$url = new moodle_url('/local/caseload/test.php');

echo $OUTPUT->header();
echo $OUTPUT->heading(get_string('testconnection', 'local_caseload'));
echo html_writer::tag('p', get_string('testconnection_desc', 'local_caseload'));

if ($run && confirm_sesskey()) {
    $endpoint = (string)get_config('local_caseload', 'endpoint');
    $secret = (string)get_config('local_caseload', 'secret');
    if ($endpoint === '' || $secret === '') {
        echo $OUTPUT->notification(get_string('notconfigured', 'local_caseload'), 'error');
    } else {
        $body = \local_caseload\delivery::ping_body($CFG->wwwroot, time());
        [$code, $response, $error] = \local_caseload\client::post($endpoint, $secret, $body,
            (int)get_config('local_caseload', 'timeout'));
        [$ok, $message] = \local_caseload\delivery::ping_result($code, $response, $error);
        echo $OUTPUT->notification(s($message), $ok ? 'success' : 'error');
        if ($ok && \local_caseload\status::failing() !== null) {
            echo $OUTPUT->notification(get_string('testokqueued', 'local_caseload',
                \local_caseload\status::queued()), 'info');
        }
    }
}

echo $OUTPUT->single_button(new moodle_url($url, ['run' => 1, 'sesskey' => sesskey()]),
    get_string('testconnection', 'local_caseload'), 'post');
echo html_writer::tag('p', html_writer::link(new moodle_url('/admin/settings.php', ['section' => 'local_caseload']),
    get_string('backtosettings', 'local_caseload')));
echo $OUTPUT->footer();
