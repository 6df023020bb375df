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
 * Admin settings: where to send events, the shared secret that signs them, the delivery state and a
 * "Test connection" action.
 *
 * @package    local_caseload
 * @copyright  2026 Caseload contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

if ($hassiteconfig) {
    $settings = new admin_settingpage('local_caseload', get_string('pluginname', 'local_caseload'));
    $ADMIN->add('localplugins', $settings);
    $ADMIN->add('localplugins', new admin_externalpage('local_caseload_test',
        get_string('testconnection', 'local_caseload'), new moodle_url('/local/caseload/test.php'),
        'moodle/site:config', true));

    if ($ADMIN->fulltree) {
        // The delivery state first: a failing delivery is what an administrator opening this page needs to see.
        $failing = \local_caseload\status::failing_message();
        $last = (int)get_config('local_caseload', 'lastsuccess');
        $state = $failing !== '' ? $OUTPUT->notification(s($failing), 'error')
            : html_writer::tag('p', $last ? get_string('lastsuccess', 'local_caseload', userdate($last))
                : get_string('nodeliveryyet', 'local_caseload'));
        $state .= html_writer::tag('p', html_writer::link(new moodle_url('/local/caseload/test.php'),
            get_string('testconnection', 'local_caseload'), ['class' => 'btn btn-secondary']));
        $settings->add(new admin_setting_heading('local_caseload/status',
            get_string('deliverystatus', 'local_caseload'), $state));
    }

    $settings->add(new admin_setting_configcheckbox('local_caseload/enabled',
        get_string('enabled', 'local_caseload'), get_string('enabled_desc', 'local_caseload'), 0));
    $settings->add(new admin_setting_configtext('local_caseload/endpoint',
        get_string('endpoint', 'local_caseload'), get_string('endpoint_desc', 'local_caseload'), '', PARAM_URL, 80));
    $settings->add(new admin_setting_configpasswordunmask('local_caseload/secret',
        get_string('secret', 'local_caseload'), get_string('secret_desc', 'local_caseload'), ''));
    $settings->add(new admin_setting_configtext('local_caseload/timeout',
        get_string('timeout', 'local_caseload'), get_string('timeout_desc', 'local_caseload'), 10, PARAM_INT));
}
