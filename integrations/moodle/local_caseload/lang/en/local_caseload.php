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
 * English strings for local_caseload.
 *
 * @package    local_caseload
 * @copyright  2026 Caseload contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$string['pluginname'] = 'Caseload roster events';
$string['enabled'] = 'Send roster events to Caseload';
$string['enabled_desc'] = 'When on, enrolments, role changes, user changes and course deletions are sent to Caseload so that teachers see the right students at once.';
$string['endpoint'] = 'Caseload webhook URL';
$string['endpoint_desc'] = 'The address Caseload gave for this site, for example https://caseload.district.example/webhooks/moodle/district-moodle (the last part is the platform name in Caseload).';
$string['secret'] = 'Webhook secret';
$string['secret_desc'] = 'The secret Caseload showed for this Moodle site (after Dynamic Registration, on Caseload\'s administration page; or printed by "caseload platform add"). Events are signed with it (HMAC-SHA256).';
$string['timeout'] = 'Timeout (seconds)';
$string['timeout_desc'] = 'How long to wait for Caseload before the delivery is retried later.';
$string['error'] = 'Caseload did not accept the event.';
$string['taskdeliver'] = 'Deliver a roster event to Caseload';
$string['deliverystatus'] = 'Delivery to Caseload';
$string['deliveryok'] = 'Roster events reach Caseload.';
$string['failingnotice'] = 'Roster events are not reaching Caseload since {$a->since}: {$a->reason}. {$a->queued} event(s) are queued and are sent again automatically (at least once an hour) until Caseload accepts them; nothing is lost. Fix the webhook URL or secret (or ask Caseload\'s administrator to enable the platform), then use "Test connection".';
$string['lastsuccess'] = 'The last roster event reached Caseload on {$a}.';
$string['nodeliveryyet'] = 'No roster event has been sent to Caseload yet.';
$string['notconfigured'] = 'The Caseload webhook URL or secret is not set in Site administration > Plugins > Local plugins > Caseload roster events.';
$string['testconnection'] = 'Test connection';
$string['testconnection_desc'] = 'Sends a signed test to the Caseload webhook URL with the secret set here, and shows what Caseload answered: which platform it matched, or why it refused. Nothing is stored in Caseload.';
$string['testokqueued'] = 'Caseload accepts this URL and secret now. The {$a} queued event(s) are sent at their next retry (Site administration > Server > Tasks > Ad hoc tasks can run them now).';
$string['backtosettings'] = 'Back to the Caseload settings';
$string['privacy:metadata:caseload'] = 'To keep course rosters current in Caseload (an LTI tool), the plugin sends enrolment and role changes to it.';
$string['privacy:metadata:caseload:userid'] = 'The user\'s id on this site (the same id Moodle sends to LTI tools).';
$string['privacy:metadata:caseload:fullname'] = 'The user\'s first and last name.';
$string['privacy:metadata:caseload:email'] = 'The user\'s email address.';
$string['privacy:metadata:caseload:idnumber'] = 'The user\'s ID number (the district\'s SIS id).';
$string['privacy:metadata:caseload:courseid'] = 'The course the enrolment or role belongs to.';
$string['privacy:metadata:caseload:roles'] = 'The user\'s roles in that course and whether the enrolment is active.';
